// PUT namespaces/<name>/finalize: the only way spec.finalizers changes, used by the namespace
// controller once a terminating namespace is empty.

import { errors } from "./errors.ts";
import { readObject } from "./http/body.ts";
import { jsonResponse, type SubresourceHandler } from "./http/resource-routes.ts";

export const finalizeSubresource: SubresourceHandler = {
  key: "core/namespaces/finalize",
  async handle(c, t, resources) {
    if (c.req.method !== "PUT") throw errors.methodNotAllowed(c.req.method);
    const body = await readObject(c.req.raw);
    return jsonResponse(await resources.update(t.spec, undefined, t.name, body, { subresource: "finalize" }));
  },
};
