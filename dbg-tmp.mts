import { containerExec } from "/work/main/src/lab/container.ts";
const o = await containerExec("pod1", "ip neigh; ping -c1 -W1 10.0.0.65; ping -c1 -W1 10.0.0.2");
console.log(o.output);
