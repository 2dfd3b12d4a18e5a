import { LabIcon } from '@jupyterlab/ui-components';

import deploySvg from '../style/icons/deploy.svg';

export const deployIcon = new LabIcon({ name: 'jupyterlab-deploy:deploy', svgstr: deploySvg });
