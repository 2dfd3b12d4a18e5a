import { requestAPI } from '../api';
import { __ } from '../i18n';
import { badge, h } from '../panel/dom';
import { instanceRecords, InstanceRecord, restartCount, restartsByInstance } from '../state';
import { Tab, ViewContext } from './context';

/** What GET /nodes/{node}/usage answers for one instance. */
export interface InstanceUsage {
  id: string;
  cpu_percent: number | null;
  memory_bytes: number | null;
  last_check: { time: number; ok: boolean; in_a_row: number } | null;
}

const USAGE_EVERY_MS = 5000; // the panel's pace: one psutil or Docker sample per instance

const REPLACED_KEPT_S = 30 * 60; // a replaced instance stays in the table this long

/** Seconds as "42 s", "5 min", "3 h". */
export function age(seconds: number): string {
  if (seconds < 90) {
    return __('%1 s', Math.max(0, Math.round(seconds)));
  }
  if (seconds < 5400) {
    return __('%1 min', Math.round(seconds / 60));
  }
  return __('%1 h', Math.round(seconds / 3600));
}

/** Bytes as "312 MB". */
export function bytes(n: number): string {
  if (n < 1024) {
    return __('%1 B', n);
  }
  if (n < 1024 * 1024) {
    return __('%1 KB', Math.round(n / 1024));
  }
  if (n < 1024 ** 3) {
    return __('%1 MB', Math.round(n / 1024 / 1024));
  }
  return __('%1 GB', (n / 1024 ** 3).toFixed(1));
}

/** The last health check as "passed 4 s ago (×3)". */
function checkText(usage: InstanceUsage | undefined, now: number): string {
  const check = usage?.last_check;
  if (!check) {
    return usage ? __('not yet') : '–';
  }
  const result = check.ok ? __('passed') : __('failed');
  return __('%1 %2 ago (×%3)', result, age(now - check.time), check.in_a_row);
}

function cells(...values: (string | Node)[]): HTMLTableCellElement[] {
  return values.map(v => h('td', {}, v));
}

/** The node's instances, running and recently replaced (greyed, with their exit reason). */
export class InstancesTab extends Tab {
  private usage = new Map<string, InstanceUsage>();
  private timer = 0;
  private sampling = false;

  constructor(context: ViewContext, name: string) {
    super(context, name, __('Instances'), 'instances');
  }

  render(): void {
    if (!this.timer) {
      this.timer = window.setInterval(() => void this.sample(), USAGE_EVERY_MS);
      void this.sample();
    } else if ((this.info?.instances ?? []).some(i => !this.usage.has(i.id))) {
      void this.sample(); // a new instance: its figures now, not at the next tick
    }
    this.draw();
  }

  stop(): void {
    window.clearInterval(this.timer);
    this.timer = 0;
  }

  /** CPU, memory and the last check of each instance, read by the service now. */
  private async sample(): Promise<void> {
    if (this.sampling) {
      return;
    }
    this.sampling = true;
    try {
      const answer = await requestAPI<{ instances: InstanceUsage[] }>(`nodes/${this.name}/usage`);
      this.usage = new Map(answer.instances.map(u => [u.id, u]));
    } catch {
      this.usage.clear(); // the node is gone or the service away: the cells show dashes
    } finally {
      this.sampling = false;
    }
    if (this.isVisible) {
      this.draw();
    }
  }

  private draw(): void {
    const node = this.info;
    const events = this.context.model.eventsOf(this.name);
    const records = new Map(instanceRecords(events).map(r => [r.id, r]));
    const versions = new Map(this.context.model.checkpoints.map(c => [c.id, `${c.name}@${c.version}`]));
    const now = Date.now() / 1000;
    const live = node?.instances ?? [];
    const restarts = restartsByInstance(events);
    const rows = live.map(i => {
      const record = records.get(i.id);
      const usage = this.usage.get(i.id);
      return this.row([i.id, i.status, i.message || record?.reason || '',
        i.container_id ? i.container_id.slice(0, 12) : String(i.pid ?? record?.pid ?? '–'), i.host ?? '',
        String(i.port ?? record?.port ?? '–'), versions.get(i.checkpoint_id ?? '') ?? (node?.image || '–'),
        age(now - (i.created ?? record?.started ?? now)),
        usage?.cpu_percent == null ? '–' : `${usage.cpu_percent.toFixed(1)} %`,
        usage?.memory_bytes == null ? '–' : bytes(usage.memory_bytes),
        checkText(usage, now), String(restarts.get(i.id) ?? 0)], false);
    });
    const liveIds = new Set(live.map(i => i.id));
    const gone = [...records.values()].filter((r: InstanceRecord) =>
      r.removed && !liveIds.has(r.id) && now - (r.removedAt ?? now) < REPLACED_KEPT_S);
    rows.push(...gone.reverse().slice(0, 20).map(r => this.row([r.id, r.replaced ? __('replaced') : __('removed'),
      r.reason, String(r.pid ?? '–'), '', String(r.port ?? '–'), '–', age(now - r.started), '–', '–', '–',
      String(restarts.get(r.id) ?? 0)], true)));
    this.node.replaceChildren(
      h('p', { className: 'jp-deploy-instances-summary' },
        __('%1 running · %2 restarts', live.length, restartCount(events))),
      h('table', { className: 'jp-deploy-table jp-deploy-instance-table' },
        h('thead', {}, h('tr', {}, ...[__('Instance'), __('Status'), __('Reason'), __('PID or container'),
          __('Host'), __('Port'), __('Checkpoint'), __('Age'), __('CPU'), __('Memory'), __('Last health check'),
          __('Restarts')].map(t => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, ...rows)));
  }

  /** One row: id, status, reason, pid, host, port, version, age, CPU, memory, check, restarts. */
  private row(values: string[], removed: boolean): HTMLElement {
    const [id, status, ...rest] = values;
    const statusCell = removed ? h('span', { className: 'jp-deploy-replaced-mark' }, status) : badge(status);
    const row = h('tr', { className: removed ? 'jp-deploy-removed' : '', 'data-instance': id },
      ...cells(id, statusCell, ...rest));
    ['cpu', 'memory', 'check', 'restarts'].forEach((name, i) => row.children[8 + i]?.classList.add(`jp-deploy-${name}`));
    return row;
  }
}

/** The node's events, newest first, filterable by instance. */
export class EventsTab extends Tab {
  private filter = h('select', { className: 'jp-mod-styled', name: 'instance' });

  constructor(context: ViewContext, name: string) {
    super(context, name, __('Events'), 'events');
    this.filter.id = `${this.id}-filter`;
    this.filter.addEventListener('change', () => this.render());
  }

  render(): void {
    const events = this.context.model.eventsOf(this.name);
    const ids = [...new Set(events.map(e => e.instance).filter((i): i is string => Boolean(i)))];
    const chosen = this.filter.value;
    this.filter.replaceChildren(h('option', { value: '' }, __('all instances')),
      ...ids.map(id => h('option', { value: id, selected: id === chosen }, id)));
    const shown = events.filter(e => !chosen || e.instance === chosen).slice(-300).reverse();
    this.node.replaceChildren(
      h('div', { className: 'jp-deploy-row' }, h('label', { for: this.filter.id }, __('Instance')), this.filter),
      h('table', { className: 'jp-deploy-table jp-deploy-event-table' },
        h('thead', {}, h('tr', {}, ...[__('Time'), __('Instance'), __('Status'), __('Message')]
          .map(t => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, ...shown.map(e => h('tr', {}, ...cells(
          new Date((e.time ?? 0) * 1000).toLocaleTimeString(), e.instance ?? __('node'), e.status ?? '',
          e.message ?? ''))))));
  }
}
