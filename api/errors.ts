// One error type for the whole API server, mapped to a metav1.Status response in one place, the
// way Hono has one HTTPException and the apiserver has StatusError.

import type { FieldError } from "../emulator/types.ts";

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: { reason: string; message: string; field?: string }[];
  retryAfterSeconds?: number;
}

export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details?: StatusDetails;
  constructor(code: number, reason: string, message: string, details?: StatusDetails) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): Record<string, unknown> {
    return {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

/** `pods "web"` as upstream writes a qualified resource and name. */
function qualified(resource: string, group: string): string {
  return group ? `${resource}.${group}` : resource;
}

export const errors = {
  badRequest: (message: string) => new ApiError(400, "BadRequest", message),
  unauthorized: () => new ApiError(401, "Unauthorized", "Unauthorized"),
  forbidden: (resource: string, group: string, name: string, why: string) =>
    new ApiError(403, "Forbidden", `${qualified(resource, group)} "${name}" is forbidden: ${why}`, {
      name,
      group: group || undefined,
      kind: resource,
    }),
  notFound: (resource: string, group: string, name: string) =>
    new ApiError(404, "NotFound", `${qualified(resource, group)} "${name}" not found`, {
      name,
      group: group || undefined,
      kind: resource,
    }),
  pathNotFound: () => new ApiError(404, "NotFound", "the server could not find the requested resource"),
  methodNotAllowed: (method: string) =>
    new ApiError(
      405,
      "MethodNotAllowed",
      `the server does not allow this method on the requested resource (${method})`,
    ),
  notAcceptable: (message: string) => new ApiError(406, "NotAcceptable", message),
  alreadyExists: (resource: string, group: string, name: string) =>
    new ApiError(409, "AlreadyExists", `${qualified(resource, group)} "${name}" already exists`, {
      name,
      group: group || undefined,
      kind: resource,
    }),
  conflict: (resource: string, group: string, name: string, why: string) =>
    new ApiError(
      409,
      "Conflict",
      `Operation cannot be fulfilled on ${qualified(resource, group)} "${name}": ${why}`,
      {
        name,
        group: group || undefined,
        kind: resource,
      },
    ),
  gone: (message: string) => new ApiError(410, "Expired", message),
  tooLarge: (limit: number) =>
    new ApiError(413, "RequestEntityTooLarge", `Request entity too large: limit is ${limit}`),
  unsupportedMediaType: (type: string) =>
    new ApiError(
      415,
      "UnsupportedMediaType",
      `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got ${type})`,
    ),
  invalid: (kind: string, group: string, name: string, message: string, causes: FieldError[]) =>
    new ApiError(422, "Invalid", message, {
      name,
      group: group || undefined,
      kind,
      causes: causes.map((c) => ({ reason: c.reason, message: c.message, field: c.field })),
    }),
  internal: (message: string) => new ApiError(500, "InternalError", `Internal error occurred: ${message}`),
};

export const conflictModified =
  "the object has been modified; please apply your changes to the latest version and try again";
