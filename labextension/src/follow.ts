import type { NodeInfo } from './panel/model';

/** One entry of the control API's event stream (`GET /deploy/api/events`). */
export interface DeployEvent {
  seq: number;
  time?: number;
  node?: string | null;
  instance?: string | null;
  status?: string | null;
  message?: string;
}

/** What following a node needs from the control API (injected, so tests need no server). */
export interface FollowAPI {
  /** The node, or null while it does not exist (yet). */
  node(name: string): Promise<NodeInfo | null>;
  /** The node's events after `since`, waiting up to `wait` seconds for the next one. */
  events(name: string, since: number, wait: number, signal: AbortSignal): Promise<DeployEvent[]>;
}

/** The longest single wait on the event stream; the service caps it at 60 s. */
export const LONG_POLL_S = 30;

/** The status line of a node: its status and its instances' statuses with their reasons. */
export function describeNode(node: NodeInfo): string {
  const instances = node.instances
    .map(i => i.status + (i.message ? ` (${i.message})` : ''))
    .join(', ');
  return `Node ${node.name}: ${node.status}${instances ? ' — instances: ' + instances : ''}`;
}

/**
 * Show the node after each of its events (a long poll: no timer) until it is Healthy, the
 * deadline passes or `signal` aborts; the node as last seen.
 */
export async function followNode(
  api: FollowAPI,
  name: string,
  show: (node: NodeInfo) => void,
  signal: AbortSignal,
  deadline: number
): Promise<NodeInfo | null> {
  let since = 0;
  let node: NodeInfo | null = null;
  while (!signal.aborted) {
    node = await api.node(name);
    if (node) {
      show(node);
    }
    const left = deadline - Date.now();
    if (node?.status === 'Healthy' || left <= 0 || signal.aborted) {
      break;
    }
    const wait = Math.min(LONG_POLL_S, Math.max(1, Math.ceil(left / 1000)));
    try {
      const events = await api.events(name, since, wait, signal);
      if (events.length) {
        since = events[events.length - 1].seq;
      }
    } catch (error) {
      if (!signal.aborted) {
        throw error;
      }
    }
  }
  return node;
}
