// Time formatting as the apiserver and kubectl print it: AGE columns use
// k8s.io/apimachinery/pkg/util/duration.HumanDuration, timestamps are metav1.Time (RFC 3339, whole
// seconds, UTC) or metav1.MicroTime (six fractional digits).

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/**
 * duration.HumanDuration: about two or three significant figures ("5s", "3m20s", "2d3h", "45d",
 * "2y10d"). Up to 2s in the future reads as now ("0s"); further out is "<invalid>".
 */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / SECOND);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.trunc(ms / MINUTE);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.trunc(ms / HOUR);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.trunc(hours / 24)}d` : `${Math.trunc(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.trunc(hours / 24) % 365;
    const years = Math.trunc(hours / 24 / 365);
    return dy === 0 ? `${years}y` : `${years}y${dy}d`;
  }
  return `${Math.trunc(hours / 24 / 365)}y`;
}

/** duration.ShortHumanDuration: one unit only ("5s", "3m", "2d", "1y"). */
export function shortHumanDuration(ms: number): string {
  const seconds = Math.trunc(ms / SECOND);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.trunc(ms / MINUTE);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.trunc(ms / HOUR);
  if (hours < 24) return `${hours}h`;
  if (hours < 24 * 365) return `${Math.trunc(hours / 24)}d`;
  return `${Math.trunc(hours / 24 / 365)}y`;
}

function toDate(date: Date | number): Date {
  return typeof date === "number" ? new Date(date) : date;
}

/** metav1.Time on the wire: `2026-11-24T14:15:26Z`. */
export function rfc3339(date: Date | number): string {
  return `${toDate(date).toISOString().slice(0, 19)}Z`;
}

/** metav1.MicroTime on the wire: `2026-11-24T14:15:26.123456Z` (always six digits). */
export function rfc3339Micro(date: Date | number): string {
  const iso = toDate(date).toISOString();
  return `${iso.slice(0, 23)}000Z`;
}

/** Milliseconds since the epoch of an RFC 3339 timestamp; undefined when absent or unparseable. */
export function parseTimestamp(ts: string | null | undefined): number | undefined {
  if (!ts) return undefined;
  const ms = Date.parse(ts);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * The printers' translateTimestampSince: HumanDuration of the time since `ts`, or "<unknown>" when
 * the timestamp is unset.
 */
export function ageSince(ts: string | null | undefined, now: Date): string {
  const ms = parseTimestamp(ts);
  return ms === undefined ? "<unknown>" : humanDuration(now.getTime() - ms);
}
