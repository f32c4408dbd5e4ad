/**
 * Sharing: the share buttons send the participant's own link (with their referral code),
 * through the system share sheet, else the clipboard, else a prompt to copy it.
 *
 * @module participant/share
 */

import { toast } from "./feedback.js";
import { sharePath } from "./model.js";
import { mobId, store } from "./state.js";

export function shareUrl() {
  return new URL(sharePath(store.get(), mobId), location.origin).href;
}

export async function share() {
  const url = shareUrl();
  const title = store.get().mob?.title ?? "Good Mob";
  const text = `Join me at "${title}" — one minute of good deeds, all at the same second.`;
  if (navigator.share) {
    try {
      await navigator.share({ title, text, url });
      return;
    } catch (error) {
      if (error?.name === "AbortError") return;
    }
  }
  try {
    await navigator.clipboard.writeText(url);
    toast("Link copied — send it to a friend");
  } catch {
    window.prompt("Copy this link and send it to a friend:", url);
  }
}
