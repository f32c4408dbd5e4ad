/**
 * Walking on the map for the simulated crowd: small-area geometry in lon/lat (local
 * equirectangular approximation, good to well under a metre over a park) and the path of a
 * phone from outside the zone to its task.
 *
 * Coordinates are [lon, lat] (GeoJSON order); distances are metres.
 *
 * @module walk
 */

const M_PER_DEG_LAT = 111_320;

/** Metres per degree of longitude at latitude `lat`. */
export function mPerDegLon(lat) {
  return M_PER_DEG_LAT * Math.cos((lat * Math.PI) / 180);
}

/** The outer ring of a GeoJSON Polygon or MultiPolygon (its first polygon), without the closing vertex. */
export function outerRing(zone) {
  const ring = zone.type === "MultiPolygon" ? zone.coordinates[0][0] : zone.coordinates[0];
  return ring.slice(0, -1);
}

/** The mean of the outer ring's vertices, [lon, lat] (inside for the convex-ish parks we use). */
export function centre(zone) {
  const ring = outerRing(zone);
  const lon = ring.reduce((s, p) => s + p[0], 0) / ring.length;
  const lat = ring.reduce((s, p) => s + p[1], 0) / ring.length;
  return [lon, lat];
}

/** Distance in metres between two [lon, lat] points. */
export function distanceM(a, b) {
  const dx = (b[0] - a[0]) * mPerDegLon((a[1] + b[1]) / 2);
  const dy = (b[1] - a[1]) * M_PER_DEG_LAT;
  return Math.hypot(dx, dy);
}

/** The point `distM` metres from `p` at `bearingRad` (0 = north, clockwise). */
export function offsetPoint(p, distM, bearingRad) {
  return [
    p[0] + (distM * Math.sin(bearingRad)) / mPerDegLon(p[1]),
    p[1] + (distM * Math.cos(bearingRad)) / M_PER_DEG_LAT,
  ];
}

/** The zone's radius around its centre: the farthest outer-ring vertex, metres. */
export function radiusM(zone) {
  const c = centre(zone);
  return Math.max(...outerRing(zone).map((p) => distanceM(c, p)));
}

/**
 * A start point outside the zone: beyond its radius by `extraM` metres in a random direction.
 * @param {object} zone GeoJSON geometry.
 * @param {() => number} rng uniform [0, 1).
 * @param {number} extraM
 */
export function startOutside(zone, rng, extraM) {
  return offsetPoint(centre(zone), radiusM(zone) + extraM, rng() * 2 * Math.PI);
}

/** Moves from `p` toward `target` by at most `stepM` metres; returns the new point. */
export function stepToward(p, target, stepM) {
  const d = distanceM(p, target);
  if (d <= stepM || d === 0) return [...target];
  const f = stepM / d;
  return [p[0] + (target[0] - p[0]) * f, p[1] + (target[1] - p[1]) * f];
}
