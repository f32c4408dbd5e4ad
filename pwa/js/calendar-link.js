// "Add to calendar" on the mob page (/m/<id>): the link points at the mob's .ics
// (GET /api/mobs/<id>.ics); kept apart from participant.js on purpose.
const link = document.getElementById("ics-link");
const mobId = decodeURIComponent(location.pathname.split("/")[2] ?? "");
if (link && /^[a-z0-9]{8}$/.test(mobId)) {
  link.href = `/api/mobs/${mobId}.ics`;
  link.hidden = false;
}
