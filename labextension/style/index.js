import './index.css';
import 'uplot/dist/uPlot.min.css';
