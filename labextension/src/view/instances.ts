import { __ } from '../i18n';
import { badge, h } from '../panel/dom';
import { instanceRecords, InstanceRecord, restartCount } from '../state';
import { Tab, ViewContext } from './context';

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

function cells(...values: (string | Node)[]): HTMLTableCellElement[] {
  return values.map(v => h('td', {}, v));
}

/** The node's instances, running and recently replaced (greyed, with their exit reason). */
export class InstancesTab extends Tab {
  constructor(context: ViewContext, name: string) {
    super(context, name, __('Instances'), 'instances');
  }

  render(): void {
    const node = this.info;
    const events = this.context.model.eventsOf(this.name);
    const records = new Map(instanceRecords(events).map(r => [r.id, r]));
    const versions = new Map(this.context.model.checkpoints.map(c => [c.id, `${c.name}@${c.version}`]));
    const now = Date.now() / 1000;
    const live = node?.instances ?? [];
    const rows = live.map(i => {
      const record = records.get(i.id);
      return this.row(i.id, i.status, i.message || record?.reason || '',
        i.container_id ? i.container_id.slice(0, 12) : String(i.pid ?? record?.pid ?? '–'), i.host ?? '',
        String(i.port ?? record?.port ?? '–'), versions.get(i.checkpoint_id ?? '') ?? (node?.image || '–'),
        age(now - (i.created ?? record?.started ?? now)), false);
    });
    const liveIds = new Set(live.map(i => i.id));
    const gone = [...records.values()].filter((r: InstanceRecord) =>
      r.removed && !liveIds.has(r.id) && now - (r.removedAt ?? now) < REPLACED_KEPT_S);
    rows.push(...gone.reverse().slice(0, 20).map(r => this.row(r.id, r.replaced ? __('replaced') : __('removed'),
      r.reason, String(r.pid ?? '–'), '', String(r.port ?? '–'), '–', age(now - r.started), true)));
    const restarts = restartCount(events);
    this.node.replaceChildren(
      h('p', { className: 'jp-deploy-instances-summary' },
        __('%1 running · %2 restarts', live.length, restarts)),
      h('table', { className: 'jp-deploy-table jp-deploy-instance-table' },
        h('thead', {}, h('tr', {}, ...[__('Instance'), __('Status'), __('Reason'), __('PID or container'),
          __('Host'), __('Port'), __('Checkpoint'), __('Age')].map(t => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, ...rows)));
  }

  private row(id: string, status: string, reason: string, pid: string, host: string, port: string,
    version: string, started: string, removed: boolean): HTMLElement {
    const statusCell = removed ? h('span', { className: 'jp-deploy-replaced-mark' }, status) : badge(status);
    return h('tr', { className: removed ? 'jp-deploy-removed' : '', 'data-instance': id },
      ...cells(id, statusCell, reason, pid, host, port, version, started));
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
