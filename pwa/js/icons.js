/**
 * Inline SVG icons (stroke icons on a 24-unit grid, drawn here; `currentColor`), as strings
 * for innerHTML. Decorative: wrap them next to text, or give the button an aria-label.
 *
 * @module icons
 */

const svg = (body, extra = "") =>
  `<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" ${extra}>${body}</svg>`;

export const icons = {
  pin: svg('<path d="M12 22s7-6.2 7-12a7 7 0 1 0-14 0c0 5.8 7 12 7 12z"/><circle cx="12" cy="10" r="2.6"/>'),
  locate: svg('<circle cx="12" cy="12" r="3.2"/><circle cx="12" cy="12" r="7.5"/><path d="M12 1.5v3M12 19.5v3M1.5 12h3M19.5 12h3"/>'),
  share: svg('<path d="M12 3v12"/><path d="M7.5 7.5 12 3l4.5 4.5"/><path d="M5 12v7a2 2 0 0 0 2 2h10a2 2 0 0 0 2-2v-7"/>'),
  arrow: svg('<path d="M12 3 5 20l7-4 7 4z" fill="currentColor" stroke-width="1.6"/>'),
  check: svg('<path d="m4.5 12.5 5 5 10-11"/>', 'stroke-width="3"'),
  clock: svg('<circle cx="12" cy="12" r="9"/><path d="M12 7v5l3 2"/>'),
  people: svg('<circle cx="9" cy="8" r="3.2"/><path d="M3 20c.6-3.5 3-5.5 6-5.5s5.4 2 6 5.5"/><circle cx="17" cy="9" r="2.5"/><path d="M16.5 14.3c2.3.2 4 1.9 4.5 4.7"/>'),
  offline: svg('<path d="M2 8.8a15 15 0 0 1 4.2-2.6M9.5 5.2A15 15 0 0 1 22 8.8M5 12.5a10 10 0 0 1 4-2.2M14.5 10.5a10 10 0 0 1 4.5 2M8.5 16a5 5 0 0 1 6.5-.3"/><path d="M12 20h.01"/><path d="m3 3 18 18"/>'),
  locationOff: svg('<path d="M8.2 4.6A7 7 0 0 1 19 10c0 1.7-.6 3.4-1.5 5M14.7 17.6C13.2 20 12 22 12 22s-7-6.2-7-12c0-.9.2-1.8.5-2.6"/><path d="m3 3 18 18"/>', 'data-icon="location-off"'),
  alert: svg('<path d="M12 3 2 20h20z"/><path d="M12 10v4.5M12 17.5h.01"/>'),
  info: svg('<circle cx="12" cy="12" r="9"/><path d="M12 11v6M12 7.5h.01"/>'),
  heart: svg('<path d="M12 20s-7.5-4.6-9.2-9.3C1.6 7.3 3.8 4 7.2 4c2 0 3.6 1.1 4.8 2.8C13.2 5.1 14.8 4 16.8 4c3.4 0 5.6 3.3 4.4 6.7C19.5 15.4 12 20 12 20z"/>'),
  back: svg('<path d="M15 5 8 12l7 7"/>'),
  map: svg('<path d="m9 4-6 2.5v14L9 18l6 2.5 6-2.5V4l-6 2.5z"/><path d="M9 4v14M15 6.5v14"/>'),
  sparkle: svg('<path d="M12 3v4M12 17v4M3 12h4M17 12h4M5.6 5.6l2.8 2.8M15.6 15.6l2.8 2.8M5.6 18.4l2.8-2.8M15.6 8.4l2.8-2.8"/>'),
};
