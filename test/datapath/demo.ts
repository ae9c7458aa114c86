// npm run demo:datapath: prints the "what the pod sees" table of docs/testing.md, measured on the wire
// through a real kube-proxy (see lab.ts). Needs root, like the datapath test.
import { missingDatapathPrerequisites, startLab, CLIENT_IP, NODE_IPS } from './lab.js';
import { whyNoNetns } from './netns.js';
import { markdownTable, whatThePodSees } from './what-the-pod-sees.js';

const cannot = (await whyNoNetns()) ?? (await missingDatapathPrerequisites()).join('\n');
if (cannot) {
  console.error(`demo:datapath cannot run: ${cannot}`);
  process.exit(1);
}

const started = Date.now();
// Ctrl-C too removes the namespaces and stops every process (see NetnsSet).
const lab = await startLab();
try {
  const { rows } = await whatThePodSees(lab);
  console.log(`client ${CLIENT_IP}; node1 ${NODE_IPS.node1} runs the pod; node2 ${NODE_IPS.node2} has none\n`);
  console.log(markdownTable(rows));
  console.log(`\nmeasured in ${((Date.now() - started) / 1000).toFixed(0)} s`);
} finally {
  await lab.stop();
}
