/**
 * Installs the service worker (/sw.js, scope "/") that keeps the app shell available
 * offline. Registration failures (an insecure origin, a private mode) are not errors for
 * the user: the app still works online.
 *
 * @module pwa
 */

/**
 * Registers /sw.js once the page has loaded; resolves to the registration or null. When the
 * worker is active, asks it to cache what this page loads (the install precached only the
 * participant's pages: the organizer's files are cached when the organizer opens theirs).
 */
export function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return Promise.resolve(null);
  const register = () => navigator.serviceWorker.register("/sw.js", { scope: "/" }).then((registration) => {
    navigator.serviceWorker.ready.then((ready) => {
      ready.active?.postMessage({ type: "precache", path: location.pathname });
    });
    return registration;
  }).catch((error) => {
    console.warn("service worker not installed:", error);
    return null;
  });
  if (document.readyState === "complete") return register();
  // After "load" (not competing with the page for bandwidth), or after 3 s at the latest
  // (a slow map tile must not hold it back).
  return new Promise((resolve) => {
    let done = false;
    const go = () => {
      if (done) return;
      done = true;
      resolve(register());
    };
    window.addEventListener("load", go, { once: true });
    setTimeout(go, 3000);
  });
}
