// kemu's node names, node-1, node-2, ...: made by kemu up and kemu node add, by Docker mode's
// compose file and /kemu/v1/nodes, and sorted by number where nodes are listed.

export function nodeName(index: number): string {
  return `node-${index}`;
}

/** N of a node-N name, 0 for any other name. */
export function nodeNumber(name: string): number {
  return Number(/^node-(\d+)$/.exec(name)?.[1] ?? 0);
}

/** node-N after the highest N taken. */
export function nextNodeName(taken: Iterable<string>): string {
  let max = 0;
  for (const name of taken) max = Math.max(max, nodeNumber(name));
  return nodeName(max + 1);
}
