// Days in a chosen time zone: what a custom range's dates mean as instants,
// and how instants are shown. The statistics service cuts its day buckets
// in the same zone (the request's `time_zone`).

/** The zone the browser is in, or UTC. */
export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** Every IANA zone the browser knows, UTC first. */
export function zones() {
  const known = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  return ["UTC", ...known.filter((zone) => zone !== "UTC")];
}

/** How far `zone`'s wall clock is ahead of UTC at `instant` (ms). */
function offset(instant, zone) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
      hour: "numeric", minute: "numeric", second: "numeric",
    }).formatToParts(new Date(instant)).map((part) => [part.type, part.value]),
  );
  const wall = Date.UTC(parts.year, parts.month - 1, parts.day, parts.hour, parts.minute, parts.second);
  return wall - Math.floor(instant / 1000) * 1000;
}

/** `instant` as a date (`YYYY-MM-DD`) in `zone`. */
function dateIn(instant, zone) {
  return new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(new Date(instant));
}

/**
 * The instant `date` (`YYYY-MM-DD`) starts in `zone`: the earliest
 * instant whose local date it is. Midnight itself, or, where the clocks
 * jump forward at midnight (America/Havana, America/Santiago, ...), the
 * first instant after the gap.
 */
export function startOfDay(date, zone) {
  const [year, month, day] = date.split("-").map(Number);
  const wall = Date.UTC(year, month - 1, day);
  // The offsets in force a day before and a day after cover every change
  // of a zone's offset around that midnight.
  const candidates = [wall - offset(wall - 864e5, zone), wall - offset(wall + 864e5, zone)]
    .filter((instant) => dateIn(instant, zone) === date)
    .sort((a, b) => a - b);
  if (candidates.length) return candidates[0];
  // Midnight falls in a gap: the day starts where the gap ends.
  return Math.max(wall - offset(wall - 864e5, zone), wall - offset(wall + 864e5, zone));
}

/** `date` plus `days` days, as `YYYY-MM-DD`. */
export function addDays(date, days) {
  const [year, month, day] = date.split("-").map(Number);
  return new Date(Date.UTC(year, month - 1, day + days)).toISOString().slice(0, 10);
}

/** Today in `zone`, as `YYYY-MM-DD`. */
export function today(zone) {
  return dateIn(Date.now(), zone);
}

/** An instant (ms) shown in `zone`: a day, an hour of a day, or a moment. */
export function show(instant, zone, precision = "moment") {
  const options = { timeZone: zone, month: "short", day: "numeric" };
  if (precision !== "day") Object.assign(options, { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  if (precision === "moment") Object.assign(options, { year: "numeric", second: "2-digit" });
  return new Intl.DateTimeFormat("en-GB", options).format(new Date(instant));
}

/** A google.protobuf.Timestamp as ms, and back. */
export const timestamp = {
  toMs: (value) => (value ? value.seconds * 1000 + Math.floor(value.nanos / 1e6) : 0),
  fromMs: (ms) => ({ seconds: Math.floor(ms / 1000), nanos: 0 }),
};
