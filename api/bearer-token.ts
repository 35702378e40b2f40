// The one check of a request's bearer token, shared by the API server and the node agents'
// kubelet-style API (kept free of imports so agents do not load the API server to use it).

import { timingSafeEqual } from "node:crypto";

export function tokenMatches(header: string | undefined, token: string): boolean {
  if (!header?.startsWith("Bearer ")) return false;
  const given = Buffer.from(header.slice(7).trim());
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}
