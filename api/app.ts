// The HTTP surface of the control plane as a Hono app: auth, discovery, OpenAPI, health, and the
// generic resource routes. Errors of every kind leave through one handler as metav1.Status.

import { Hono } from "hono";
import { tokenMatches } from "./bearer-token.ts";
import { ApiError, errors } from "./errors.ts";
import { apiGroupList, apiResourceList, apiVersions, versionInfo } from "./http/discovery.ts";
import { openApiGroupVersion, openApiRoot } from "./http/openapi.ts";
import { jsonResponse, routeApi, type SubresourceHandler } from "./http/resource-routes.ts";
import type { Registry } from "./registry.ts";
import type { Resources } from "./resources.ts";

export interface AppDeps {
  registry: Registry;
  resources: Resources;
  /** Bearer token every request must present (health endpoints excepted). */
  token: string;
  /** How clients reach us, for APIVersions.serverAddressByClientCIDRs. */
  serverAddress: string;
  subresources?: SubresourceHandler[];
  /** Routes outside the Kubernetes API (kemu's own /kemu/v1), behind the same authentication. */
  routes?: (app: Hono) => void;
}

const PUBLIC_PATHS = new Set(["/healthz", "/readyz", "/livez"]);

export function createApp(deps: AppDeps): Hono {
  const { registry, resources } = deps;
  const subresources = new Map((deps.subresources ?? []).map((s) => [s.key, s]));
  const app = new Hono();

  app.onError((err, c) => {
    const apiErr = err instanceof ApiError ? err : errors.internal(err.message);
    if (!(err instanceof ApiError)) console.error(`kemu api: ${c.req.method} ${c.req.path}:`, err);
    return jsonResponse(apiErr.toStatus(), apiErr.code);
  });
  app.notFound(() => jsonResponse(errors.pathNotFound().toStatus(), 404));

  app.use("*", async (c, next) => {
    if (!PUBLIC_PATHS.has(c.req.path) && !tokenMatches(c.req.header("authorization"), deps.token)) {
      throw errors.unauthorized();
    }
    await next();
  });

  for (const path of PUBLIC_PATHS) app.get(path, (c) => c.text("ok"));
  app.get("/version", () => jsonResponse(versionInfo()));
  app.get("/api", () => jsonResponse(apiVersions(deps.serverAddress)));
  app.get("/apis", () => jsonResponse(apiGroupList(registry)));
  // kubectl <= 1.24 validates against OpenAPI v2 (asked for as protobuf). An empty document, which
  // zero protobuf bytes decode to, makes it skip client-side validation and rely on the server's.
  app.get("/openapi/v2", (c) =>
    (c.req.header("accept") ?? "").includes("protobuf")
      ? new Response(new Uint8Array(0), { headers: { "content-type": "application/octet-stream" } })
      : jsonResponse({
          swagger: "2.0",
          info: { title: "Kubernetes (kemu)", version: "v1.32.0" },
          paths: {},
          definitions: {},
        }),
  );
  app.get("/openapi/v3", () => jsonResponse(openApiRoot(registry)));
  app.get("/openapi/v3/api/:version", (c) =>
    jsonResponse(openApiGroupVersion(registry, "", c.req.param("version"))),
  );
  app.get("/openapi/v3/apis/:group/:version", (c) =>
    jsonResponse(openApiGroupVersion(registry, c.req.param("group"), c.req.param("version"))),
  );
  deps.routes?.(app);
  app.all("/api/*", (c) => routeApi(c, registry, resources, subresources));
  app.all("/apis/*", (c) => routeApi(c, registry, resources, subresources));
  return app;
}

export { apiResourceList };
