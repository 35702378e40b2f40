// Request bodies: JSON, YAML or Kubernetes protobuf in, capped at 3 MiB like the apiserver, with
// 400/413/415 errors.

import { parse as parseYaml } from "yaml";
import { ApiError, errors } from "../errors.ts";
import type { PatchType } from "../resources.ts";
import { decodeKubeProtobuf, isProtobufMediaType, ProtobufError } from "./protobuf.ts";

export const MAX_BODY_BYTES = 3 * 1024 * 1024;

/** Reads the body as text, refusing anything over the limit before buffering it all. */
export async function readBody(req: Request): Promise<string> {
  const bytes = await readBodyBytes(req);
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
}

/** Reads the raw body bytes, refusing anything over the limit before buffering it all. */
export async function readBodyBytes(req: Request): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw errors.tooLarge(MAX_BODY_BYTES);
  if (!req.body) return new Uint8Array();
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw errors.tooLarge(MAX_BODY_BYTES);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

function mediaType(req: Request): string {
  return (req.headers.get("content-type") ?? "application/json").split(";")[0].trim().toLowerCase();
}

/** Parses an object body (create/update) from JSON, YAML or Kubernetes protobuf. */
export async function readObject(req: Request): Promise<unknown> {
  const type = mediaType(req);
  if (isProtobufMediaType(type)) return parseProtobuf(await readBodyBytes(req));
  const text = await readBody(req);
  if (type === "application/json" || type === "" || type === "*/*") return parseJson(text);
  if (type === "application/yaml" || type === "application/x-yaml" || type === "text/yaml")
    return parseYamlText(text);
  throw errors.unsupportedMediaType(type);
}

const PATCH_TYPES: Record<string, PatchType> = {
  "application/merge-patch+json": "merge",
  "application/json-patch+json": "json",
  "application/strategic-merge-patch+json": "strategic",
};

export async function readPatch(req: Request): Promise<{ type: PatchType; patch: unknown }> {
  const media = mediaType(req);
  const type = PATCH_TYPES[media];
  if (!type) {
    throw errors.unsupportedMediaType(
      `${media}; patches accept application/merge-patch+json, application/json-patch+json, application/strategic-merge-patch+json`,
    );
  }
  return { type, patch: parseJson(await readBody(req)) };
}

export function parseJson(text: string): unknown {
  if (text.trim() === "") throw errors.badRequest("the request body is empty");
  try {
    return JSON.parse(text);
  } catch (e) {
    throw errors.badRequest(`couldn't get version/kind; json parse error: ${(e as Error).message}`);
  }
}

/** Decodes a protobuf body; kinds without a protobuf schema are a 415 telling the client to send JSON. */
function parseProtobuf(body: Uint8Array): Record<string, unknown> {
  if (body.length === 0) throw errors.badRequest("the request body is empty");
  try {
    return decodeKubeProtobuf(body).object;
  } catch (e) {
    if (!(e instanceof ProtobufError)) throw e;
    if (e.reason === "unsupported") throw new ApiError(415, "UnsupportedMediaType", e.message);
    throw errors.badRequest(`couldn't decode the protobuf body: ${e.message}`);
  }
}

function parseYamlText(text: string): unknown {
  try {
    return parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    throw errors.badRequest(`error converting YAML to JSON: ${(e as Error).message.split("\n")[0]}`);
  }
}
