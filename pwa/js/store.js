// A small state store: one object per page, changed only through set(), read through get().
// Modules that draw part of a page subscribe to the keys they show; nothing else holds
// copies of shared state. No DOM here, so it runs under `node --test` too.

export function createStore(initial = {}) {
  let state = { ...initial };
  const listeners = new Set();

  return {
    get() {
      return state;
    },
    // Shallow-merge `patch`; listeners hear about it once, with the keys that changed.
    set(patch) {
      const changed = Object.keys(patch).filter((k) => !Object.is(state[k], patch[k]));
      if (changed.length === 0) return;
      state = { ...state, ...patch };
      for (const fn of [...listeners]) fn(state, changed);
    },
    // fn(state, changedKeys); with `keys`, only when one of them changed. Returns unsubscribe.
    subscribe(fn, keys = null) {
      const wrapped = keys ? (s, changed) => changed.some((k) => keys.includes(k)) && fn(s, changed) : fn;
      listeners.add(wrapped);
      return () => listeners.delete(wrapped);
    },
  };
}
