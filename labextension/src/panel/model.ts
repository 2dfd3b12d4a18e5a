import { Signal } from '@lumino/signaling';

import { requestAPI } from '../api';
import { DeployEvent, LONG_POLL_S } from '../follow';

export interface InstanceInfo {
  id: string;
  status: string;
  message: string;
  runtime: string;
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
}

export interface CheckpointInfo {
  name: string;
  version: number;
  id: string;
  inputs?: { name: string; type?: string }[];
  outputs?: { name: string; type?: string }[];
}

export interface AliasInfo {
  name: string;
  nodes: Record<string, number>;
  public: boolean;
  endpoint: string;
  routing: { node: string; weight: number; status: string | null }[];
}

/** What the panel shows, kept current by the control API's event stream (a long poll). */
export class DeployModel {
  nodes: NodeInfo[] = [];
  checkpoints: CheckpointInfo[] = [];
  aliases: AliasInfo[] = [];
  gatewayUrl = '';
  error: unknown = null;
  readonly changed = new Signal<this, void>(this);
  private seq = 0;
  private stopped = false;

  /** Load everything, then follow the events until dispose(). */
  async start(): Promise<void> {
    try {
      const service = await requestAPI<{ gateway_url: string }>('');
      this.gatewayUrl = service.gateway_url;
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

  /** Fetch the lists again; an error is kept for the panel to show. */
  async refresh(): Promise<void> {
    try {
      const [nodes, checkpoints, aliases] = await Promise.all([
        requestAPI<{ nodes: NodeInfo[] }>('nodes'),
        requestAPI<{ checkpoints: CheckpointInfo[] }>('checkpoints'),
        requestAPI<{ aliases: AliasInfo[] }>('aliases')
      ]);
      this.nodes = nodes.nodes;
      this.checkpoints = checkpoints.checkpoints;
      this.aliases = aliases.aliases;
      this.error = null;
    } catch (error) {
      this.error = error;
    }
    this.changed.emit();
  }

  /** The sequence number of the last event so far (the stream answers 1000 at most). */
  private async latestSeq(): Promise<number> {
    let seq = 0;
    for (;;) {
      const { events } = await requestAPI<{ events: DeployEvent[] }>(`events?since=${seq}`);
      if (!events.length) {
        return seq;
      }
      seq = events[events.length - 1].seq;
    }
  }

  /** Reload after each batch of events (nodes, instances, checkpoints, aliases); no timer. */
  private async follow(): Promise<void> {
    while (!this.stopped) {
      try {
        const { events } = await requestAPI<{ events: DeployEvent[] }>(
          `events?since=${this.seq}&wait=${LONG_POLL_S}`
        );
        if (events.length) {
          this.seq = events[events.length - 1].seq;
          await this.refresh();
        }
      } catch (error) {
        this.error = error;
        this.changed.emit();
        await new Promise(resolve => setTimeout(resolve, 3000)); // the server is away: retry
      }
    }
  }
}
