import type { DeployEvent } from './follow';
import type { InstanceInfo, NodeInfo } from './panel/model';
import { plain, Trans } from './words';

/** An instance as its events tell it, running or gone. */
export interface InstanceRecord {
  id: string;
  status: string;
  /** The latest message that explains the status ("the instance exited (code 3)"). */
  reason: string;
  pid: number | null;
  port: number | null;
  started: number;
  removed: boolean;
  removedAt: number | null;
  /** Removed for a failure (an exit, failed checks), not for a scale-down or a delete. */
  replaced: boolean;
}

// Messages that carry an address or a pid rather than a reason.
const NOT_A_REASON = /^(pid \d+|[\w.-]+:\d+|removed|node)?$/;
// Instances stopped on purpose: not restarts.
const PLANNED = /scal|drain|delet|suspend|stopp|generation|settings|replaced by/i;

/** Every instance the node's events mention, oldest first. */
export function instanceRecords(events: DeployEvent[]): InstanceRecord[] {
  const byId = new Map<string, InstanceRecord>();
  for (const event of events) {
    const id = event.instance;
    if (!id) {
      continue;
    }
    let record = byId.get(id);
    if (!record) {
      record = {
        id, status: 'Undefined', reason: '', pid: null, port: null, started: event.time ?? 0,
        removed: false, removedAt: null, replaced: false
      };
      byId.set(id, record);
    }
    const message = event.message ?? '';
    const pid = /^pid (\d+)$/.exec(message);
    const port = /:(\d+)$/.exec(message);
    if (pid) {
      record.pid = Number(pid[1]);
    } else if (port && event.status === 'Started') {
      record.port = Number(port[1]);
    }
    if (event.status) {
      record.status = event.status;
    }
    if (message === 'removed') {
      record.removed = true;
      record.removedAt = event.time ?? null;
      record.replaced = record.reason !== '' && !PLANNED.test(record.reason);
    } else if (!NOT_A_REASON.test(message)) {
      record.reason = message;
    }
  }
  return [...byId.values()];
}

/** How many instances of the node were replaced after a failure. */
export function restartCount(events: DeployEvent[]): number {
  return instanceRecords(events).filter(r => r.replaced).length;
}

/** The latest failure in the node's events: an instance that went Unhealthy or was stopped. */
export function latestFailure(events: DeployEvent[]): string {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i];
    const message = e.message ?? '';
    if (e.instance && (e.status === 'Unhealthy' || e.status === 'Deleting') && !NOT_A_REASON.test(message) &&
        !PLANNED.test(message)) {
      return message;
    }
    if (e.instance && /failed|error/i.test(message) && !e.status) {
      return message; // a replay that failed, a build that broke
    }
  }
  return '';
}

/** The reason a node shows beside its status: why it is not serving, and how often it restarted. */
export function nodeReason(node: Pick<NodeInfo, 'status'>, events: DeployEvent[], __: Trans = plain): string {
  const restarts = restartCount(events);
  const parts: string[] = [];
  if (node.status !== 'Healthy') {
    const failure = latestFailure(events);
    if (failure) {
      parts.push(failure);
    }
  }
  if (restarts > 0) {
    parts.push(restarts === 1 ? __('1 restart') : __('%1 restarts', restarts));
  }
  return parts.join(' · ');
}

/** "2/2 ready (max 3)": healthy instances against the range. */
export function readiness(
  node: Pick<NodeInfo, 'min' | 'max'> & { instances: Pick<InstanceInfo, 'status'>[] }, __: Trans = plain
): string {
  const ready = node.instances.filter(i => i.status === 'Healthy').length;
  return __('%1/%2 ready (max %3)', ready, node.min, node.max);
}

/** Problems with a Scale request, in words; empty when it can be sent. */
export function validateRange(min: string | number, max: string | number, __: Trans = plain): string[] {
  const low = Number(min);
  const high = Number(max);
  const errors: string[] = [];
  if (String(min).trim() === '' || !Number.isInteger(low) || low < 0) {
    errors.push(__('the minimum must be a whole number, 0 or more'));
  }
  if (String(max).trim() === '' || !Number.isInteger(high) || high < 1) {
    errors.push(__('the maximum must be a whole number, 1 or more'));
  }
  if (errors.length === 0 && low > high) {
    errors.push(__('the minimum (%1) is more than the maximum (%2)', low, high));
  }
  return errors;
}

/** The alias targets that would get traffic but cannot serve it. */
export function aliasWarnings(
  routing: { node: string; weight: number; status: string | null }[], __: Trans = plain
): string[] {
  return routing
    .filter(r => r.weight > 0 && r.status !== 'Healthy')
    .map(r => __('%1 gets %2% of the traffic but is %3', r.node, r.weight, r.status ?? __('missing')));
}

/** How many times each instance's place was restarted: an instance that replaces a failed
 * one carries on its count, plus one (a scale-up starts at 0). */
export function restartsByInstance(events: DeployEvent[]): Map<string, number> {
  const restarts = new Map<string, number>();
  const failed = new Set<string>();
  const waiting: number[] = []; // counts of failed instances whose replacement has not come yet
  for (const event of events) {
    const id = event.instance;
    if (!id) {
      continue;
    }
    if (!restarts.has(id)) {
      const before = waiting.shift();
      restarts.set(id, before === undefined ? 0 : before + 1);
    }
    const message = event.message ?? '';
    const failing = event.status === 'Deleting' && !NOT_A_REASON.test(message) && !PLANNED.test(message);
    if (failing && !failed.has(id)) {
      failed.add(id);
      waiting.push(restarts.get(id)!);
    }
  }
  return restarts;
}
