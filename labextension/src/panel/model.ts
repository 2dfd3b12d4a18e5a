import { Signal } from '@lumino/signaling';

import { currentProject, requestAPI, setProject } from '../api';
import { DeployEvent, LONG_POLL_S } from '../follow';
import { AuditEvent, auditRows, orderProjects, pickProject, ProjectInfo } from '../projects';

export interface InstanceInfo {
  id: string;
  status: string;
  message: string;
  runtime: string;
  pid?: number | null;
  host?: string;
  port?: number | null;
  created?: number;
  checkpoint_id?: string;
  container_id?: string;
}

export interface NodeInfo {
  name: string;
  status: string;
  checkpoint: string;
  image: string;
  runtime: string;
  min: number;
  max: number;
  suspended: boolean;
  endpoint: string;
  instances: InstanceInfo[];
  checkpoint_id?: string;
  config?: string;
  env?: Record<string, string>;
  port?: number;
}

export interface CheckpointInfo {
  name: string;
  version: number;
  id: string;
  inputs?: { name: string; type?: string }[];
  outputs?: { name: string; type?: string }[];
  created?: number;
  source?: string;
}

export interface AliasInfo {
  name: string;
  nodes: Record<string, number>;
  public: boolean;
  endpoint: string;
  routing: { node: string; weight: number; status: string | null }[];
  shadow?: { node: string; percent: number } | null;
  sticky?: Record<string, string> | null;
}

const EVENTS_KEPT = 2000;

/** What the panel shows, kept current by the control API's event stream (a long poll). */
export class DeployModel {
  nodes: NodeInfo[] = [];
  checkpoints: CheckpointInfo[] = [];
  aliases: AliasInfo[] = [];
  gatewayUrl = '';
  error: unknown = null;
  /** The caller's projects, the personal one first, each with the caller's role. */
  projects: ProjectInfo[] = [];
  /** The shown project's audit, newest first. */
  audit: AuditEvent[] = [];
  /** Each node's events, oldest first (the last EVENTS_KEPT). */
  readonly events = new Map<string, DeployEvent[]>();
  /** Called with each new event after the first load (toasts, announcements). */
  onEvent: (event: DeployEvent) => void = () => undefined;
  readonly changed = new Signal<this, void>(this);
  private seq = 0;
  private stopped = false;

  /** The project shown, and that every call acts in. */
  get project(): string {
    return currentProject();
  }

  /** The shown project's entry (its role, members, quotas), if listed. */
  get info(): ProjectInfo | undefined {
    return this.projects.find(p => p.name === this.project);
  }

  /** Load everything, then follow the events until dispose(). */
  async start(): Promise<void> {
    try {
      const service = await requestAPI<{ gateway_url: string }>('');
      this.gatewayUrl = service.gateway_url;
      await this.loadProjects();
      this.seq = await this.latestSeq(); // what is loaded next already shows these
    } catch (error) {
      this.error = error;
    }
    await this.refresh();
    void this.follow();
  }

  dispose(): void {
    this.stopped = true;
  }

  /** Show another project: every call acts in it from now on. */
  async switchTo(project: string): Promise<void> {
    setProject(project);
    this.events.clear();
    this.nodes = [];
    this.checkpoints = [];
    this.aliases = [];
    this.audit = [];
    try {
      this.seq = await this.latestSeq();
    } catch (error) {
      this.error = error;
    }
    await this.refresh();
  }

  /** Fetch the lists again; an error is kept for the panel to show. */
  async refresh(): Promise<void> {
    try {
      await this.loadProjects();
      const project = encodeURIComponent(this.project);
      const [nodes, checkpoints, aliases, audit] = await Promise.all([
        requestAPI<{ nodes: NodeInfo[] }>('nodes'),
        requestAPI<{ checkpoints: CheckpointInfo[] }>('checkpoints'),
        requestAPI<{ aliases: AliasInfo[] }>('aliases'),
        project ? requestAPI<{ events: AuditEvent[] }>(`projects/${project}/events`) : { events: [] }
      ]);
      this.nodes = nodes.nodes;
      this.checkpoints = checkpoints.checkpoints;
      this.aliases = aliases.aliases;
      this.audit = auditRows(audit.events);
      this.error = null;
    } catch (error) {
      this.error = error;
    }
    this.changed.emit();
  }

  /** The events of a node so far. */
  eventsOf(node: string): DeployEvent[] {
    return this.events.get(node) ?? [];
  }

  /** The caller's projects; the shown one stays if the caller still has it. */
  private async loadProjects(): Promise<void> {
    const { projects } = await requestAPI<{ projects: ProjectInfo[] }>('projects');
    this.projects = orderProjects(projects);
    setProject(pickProject(this.projects, this.project));
  }

  private keep(events: DeployEvent[]): void {
    for (const event of events) {
      if (event.node) {
        const list = this.events.get(event.node) ?? [];
        list.push(event);
        list.splice(0, Math.max(list.length - EVENTS_KEPT, 0));
        this.events.set(event.node, list);
      }
    }
  }

  /** Read every event so far, kept per node; the sequence number of the last (pages of 1000). */
  private async latestSeq(): Promise<number> {
    let seq = 0;
    for (;;) {
      const { events } = await requestAPI<{ events: DeployEvent[] }>(`events?since=${seq}`);
      if (!events.length) {
        return seq;
      }
      this.keep(events);
      seq = events[events.length - 1].seq;
    }
  }

  /** Reload after each batch of events (nodes, instances, checkpoints, aliases); no timer. */
  private async follow(): Promise<void> {
    while (!this.stopped) {
      try {
        const project = this.project;
        const { events } = await requestAPI<{ events: DeployEvent[] }>(
          `events?since=${this.seq}&wait=${LONG_POLL_S}`
        );
        if (project !== this.project) {
          continue; // another project was picked meanwhile: these were the last one's
        }
        if (events.length) {
          this.seq = events[events.length - 1].seq;
          this.keep(events);
          await this.refresh();
          events.forEach(event => this.onEvent(event));
        }
      } catch (error) {
        this.error = error;
        this.changed.emit();
        await new Promise(resolve => setTimeout(resolve, 3000)); // the server is away: retry
        await this.refresh(); // or the project is gone: refresh picks one the caller still has
      }
    }
  }
}
