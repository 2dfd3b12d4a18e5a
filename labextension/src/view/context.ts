import { Widget } from '@lumino/widgets';

import { DeployModel, NodeInfo } from '../panel/model';

/** What the views of a node share: the live model and how the gateway is shown to users. */
export interface ViewContext {
  model: DeployModel;
  /** The gateway's address as the service has it, and as users are shown it (a setting). */
  gateway: () => { actual: string; shown: string };
  /** Open a checkpoint version (NAME@VERSION) in the main area. */
  openCheckpoint: (ref: string) => void;
  /** Write the node's `%deploy` record into the active notebook as a new cell. */
  writeMagic: (node: string) => void;
}

/** `text` with the gateway's own address replaced by the one users are shown. */
export function shownUrl(context: ViewContext, text: string): string {
  const { actual, shown } = context.gateway();
  return actual && shown ? text.split(actual).join(shown) : text;
}

/** One tab of a node's view: drawn when shown, its timers and streams stopped when hidden. */
export abstract class Tab extends Widget {
  constructor(
    protected context: ViewContext,
    protected name: string,
    label: string,
    id: string
  ) {
    super();
    this.title.label = label;
    this.id = `jp-deploy-${name}-${id}`;
    this.addClass('jp-deploy-tab-page');
    this.addClass(`jp-deploy-tab-${id}`);
  }

  /** The node as last loaded; null once it is gone. */
  protected get info(): NodeInfo | null {
    return this.context.model.nodes.find(n => n.name === this.name) ?? null;
  }

  /** Draw again: the model changed. */
  abstract render(): void;

  /** Stop what runs while the tab is shown. */
  stop(): void {
    // nothing runs by default
  }

  protected onAfterShow(): void {
    this.render();
  }

  protected onBeforeHide(): void {
    this.stop();
  }

  dispose(): void {
    this.stop();
    super.dispose();
  }
}

/** A tab that loads again every few seconds while it is shown. */
export abstract class PollingTab extends Tab {
  private timer = 0;

  /** Fetch and draw once. */
  protected abstract load(): Promise<void>;

  render(): void {
    if (!this.timer) {
      void this.load();
      this.timer = window.setInterval(() => void this.load(), 5000);
    }
  }

  stop(): void {
    window.clearInterval(this.timer);
    this.timer = 0;
  }
}
