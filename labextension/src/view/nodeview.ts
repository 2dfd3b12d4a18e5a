import { MainAreaWidget } from '@jupyterlab/apputils';
import { addIcon, refreshIcon, ToolbarButton } from '@jupyterlab/ui-components';
import { TabPanel } from '@lumino/widgets';

import { __ } from '../i18n';
import { deployIcon } from '../icons';
import { ViewContext, Tab } from './context';
import { EventsTab, InstancesTab } from './instances';
import { LogsTab, RequestsTab, TryTab } from './logs';
import { MonitoringTab } from './monitoring';
import { OverviewTab } from './overview';

/** A node in the main area: tabs Overview, Instances, Monitoring, Logs, Events and Try it. */
export class NodeView extends MainAreaWidget<TabPanel> {
  private tabs: Tab[];
  private changed = () => this.refreshTabs();

  constructor(
    private context: ViewContext,
    readonly nodeName: string
  ) {
    const panel = new TabPanel();
    super({ content: panel });
    this.id = `jp-deploy-node-${nodeName}`;
    this.addClass('jp-deploy-node-view');
    this.title.label = nodeName;
    this.title.caption = __('Node %1', nodeName);
    this.title.icon = deployIcon;
    this.title.closable = true;
    panel.addClass('jp-deploy-tabs-panel');
    this.tabs = [
      new OverviewTab(context, nodeName), new InstancesTab(context, nodeName),
      new MonitoringTab(context, nodeName), new LogsTab(context, nodeName),
      new RequestsTab(context, nodeName), new EventsTab(context, nodeName), new TryTab(context, nodeName)
    ];
    this.tabs.forEach(tab => panel.addWidget(tab));
    panel.tabBar.node.setAttribute('aria-label', __('Views of node %1', nodeName));
    this.toolbar.addItem('refresh', new ToolbarButton({
      icon: refreshIcon, tooltip: __('Refresh node %1', nodeName),
      onClick: () => void context.model.refresh()
    }));
    this.toolbar.addItem('write-magic', new ToolbarButton({
      icon: addIcon, label: __('%deploy cell'), className: 'jp-deploy-write-magic',
      tooltip: __('Write the %deploy commands that make node %1 again into the active notebook', nodeName),
      onClick: () => context.writeMagic(nodeName)
    }));
    context.model.changed.connect(this.changed);
  }

  /** Show the tab with this label. */
  select(label: string): void {
    const index = this.tabs.findIndex(t => t.title.label === label);
    if (index >= 0) {
      this.content.currentIndex = index;
    }
  }

  dispose(): void {
    this.context.model.changed.disconnect(this.changed);
    super.dispose();
  }

  private refreshTabs(): void {
    if (!this.context.model.nodes.some(n => n.name === this.nodeName)) {
      this.title.label = __('%1 (deleted)', this.nodeName);
    }
    const current = this.content.currentWidget as Tab | null;
    if (current && current.isVisible) {
      current.render();
    }
  }
}
