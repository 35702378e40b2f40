import { describe, expect, it } from "vitest";
import {
  blockingDependents,
  decideDependent,
  finalizersForDeletion,
  ownerState,
} from "./garbage-collection.ts";
import type { KubeObject, OwnerReference } from "./types.ts";

const ref = (uid: string, block = true): OwnerReference => ({
  apiVersion: "apps/v1",
  kind: "ReplicaSet",
  name: uid,
  uid,
  controller: true,
  blockOwnerDeletion: block,
});

function obj(name: string, extra: Partial<KubeObject["metadata"]> = {}): KubeObject {
  return { metadata: { name, uid: `uid-${name}`, ...extra } };
}

describe("ownerState", () => {
  it("is dangling when missing or replaced, waiting when deleting in the foreground", () => {
    const r = ref("o1");
    expect(ownerState(r, undefined)).toBe("dangling");
    expect(ownerState(r, obj("o1", { uid: "another" }))).toBe("dangling");
    expect(ownerState(r, obj("o1", { uid: "o1" }))).toBe("solid");
    expect(
      ownerState(r, obj("o1", { uid: "o1", deletionTimestamp: "t", finalizers: ["foregroundDeletion"] })),
    ).toBe("waiting");
    expect(ownerState(r, obj("o1", { uid: "o1", deletionTimestamp: "t", finalizers: ["orphan"] }))).toBe(
      "solid",
    );
  });
});

describe("decideDependent", () => {
  const dep = obj("pod");
  it("keeps a dependent with a solid owner, trimming references to gone or waiting owners", () => {
    expect(decideDependent(dep, [{ ref: ref("a"), state: "solid" }], false)).toEqual({ action: "keep" });
    expect(
      decideDependent(
        dep,
        [
          { ref: ref("a"), state: "solid" },
          { ref: ref("b"), state: "dangling" },
          { ref: ref("c"), state: "waiting" },
        ],
        false,
      ),
    ).toEqual({ action: "removeOwnerReferences", uids: ["b", "c"] });
  });

  it("deletes an orphaned dependent in the background, or as its own finalizers ask", () => {
    expect(decideDependent(dep, [{ ref: ref("a"), state: "dangling" }], false)).toEqual({
      action: "delete",
      propagationPolicy: "Background",
      unblockOwners: false,
    });
    expect(
      decideDependent(obj("x", { finalizers: ["orphan"] }), [{ ref: ref("a"), state: "dangling" }], true),
    ).toMatchObject({ propagationPolicy: "Orphan" });
  });

  it("deletes in the foreground when a waiting owner needs a dependent that has dependents itself", () => {
    expect(decideDependent(dep, [{ ref: ref("a"), state: "waiting" }], true)).toEqual({
      action: "delete",
      propagationPolicy: "Foreground",
      unblockOwners: false,
    });
    expect(decideDependent(dep, [{ ref: ref("a"), state: "waiting" }], true, true)).toMatchObject({
      unblockOwners: true,
    });
    expect(decideDependent(dep, [{ ref: ref("a"), state: "waiting" }], false)).toMatchObject({
      propagationPolicy: "Background",
    });
    expect(decideDependent(dep, [], false)).toEqual({ action: "keep" });
  });

  it("finds the dependents that block an owner", () => {
    const blocking = obj("b", { ownerReferences: [ref("o")] });
    const free = obj("f", { ownerReferences: [ref("o", false)] });
    expect(blockingDependents("o", [blocking, free]).map((d) => d.metadata.name)).toEqual(["b"]);
  });
});

describe("finalizersForDeletion", () => {
  it("turns a propagation policy into the garbage collector's finalizers", () => {
    expect(finalizersForDeletion(undefined, {})).toBeUndefined();
    expect(finalizersForDeletion(["x/y"], { propagationPolicy: "Foreground" })).toEqual([
      "x/y",
      "foregroundDeletion",
    ]);
    expect(finalizersForDeletion(["foregroundDeletion"], { propagationPolicy: "Orphan" })).toEqual([
      "orphan",
    ]);
    expect(finalizersForDeletion(["orphan"], { propagationPolicy: "Background" })).toEqual([]);
    expect(finalizersForDeletion([], { propagationPolicy: "Background" })).toBeUndefined();
    expect(finalizersForDeletion(["orphan"], { propagationPolicy: "Orphan" })).toBeUndefined();
    expect(finalizersForDeletion(undefined, { orphanDependents: true })).toEqual(["orphan"]);
  });
});
