// Drives `agentops mcp` with the official TypeScript SDK client
// (@modelcontextprotocol/sdk), for crates/agentops-cli/tests/mcp.rs.
//
//   node client.mjs stdio BIN DIR      < steps.json
//   node client.mjs http  URL TOKEN    < steps.json
//
// steps.json is a list of {"op": ..., ...}; the answer, on stdout, is one
// JSON object: {"protocol": ..., "results": [...], "notifications": [...]}.
// A step that throws gives {"thrown": message, "code": ...} in its place.
import { pathToFileURL } from "node:url";
import { readFileSync } from "node:fs";

const sdkRoot = `${process.env.AGENTOPS_MCP_SDK}/node_modules/@modelcontextprotocol/sdk/dist/esm`;
const load = (p) => import(pathToFileURL(`${sdkRoot}/${p}`).href);
const { Client } = await load("client/index.js");
const { StdioClientTransport } = await load("client/stdio.js");
const { StreamableHTTPClientTransport } = await load("client/streamableHttp.js");
const types = await load("types.js");

const [mode, a, b] = process.argv.slice(2);
const steps = JSON.parse(readFileSync(0, "utf8"));

const transport =
  mode === "stdio"
    ? new StdioClientTransport({ command: a, args: ["mcp"], cwd: b, env: process.env, stderr: "pipe" })
    : new StreamableHTTPClientTransport(new URL(a), {
        requestInit: { headers: { Authorization: `Bearer ${b}` } },
      });
const client = new Client({ name: "agentops-test", version: "1.0.0" });
const notifications = [];
client.setNotificationHandler(types.ResourceListChangedNotificationSchema, (n) => {
  notifications.push(n.method);
});
client.setNotificationHandler(types.ResourceUpdatedNotificationSchema, (n) => {
  notifications.push(`${n.method} ${n.params.uri}`);
});

await client.connect(transport);
const results = [];
for (const s of steps) {
  try {
    switch (s.op) {
      case "listTools":
        results.push(await client.listTools());
        break;
      case "callTool":
        results.push(await client.callTool({ name: s.name, arguments: s.arguments, _meta: s.meta }));
        break;
      case "listResources":
        results.push(await client.listResources(s.cursor ? { cursor: s.cursor } : undefined));
        break;
      case "listResourceTemplates":
        results.push(await client.listResourceTemplates());
        break;
      case "readResource":
        results.push(await client.readResource({ uri: s.uri }));
        break;
      case "subscribe":
        results.push(await client.subscribeResource({ uri: s.uri }));
        break;
      case "listPrompts":
        results.push(await client.listPrompts());
        break;
      case "getPrompt":
        results.push(await client.getPrompt({ name: s.name, arguments: s.arguments }));
        break;
      case "sleep":
        await new Promise((r) => setTimeout(r, s.ms));
        results.push({});
        break;
      default:
        results.push({ thrown: `unknown step ${s.op}` });
    }
  } catch (e) {
    results.push({ thrown: String(e.message ?? e), code: e.code ?? null });
  }
}
const out = {
  protocol: transport.protocolVersion ?? client.getServerVersion()?.version ?? null,
  server: client.getServerVersion(),
  instructions: client.getInstructions(),
  results,
  notifications,
};
process.stdout.write(JSON.stringify(out) + "\n");
await client.close();
