// Drives `berth mcp` with the official MCP TypeScript SDK client: list the
// tool, call preflight, create, exec and destroy, and check the replies.
// Usage: node client.mjs BERTH_BINARY IMAGE
// Prints `N passed, N failed` and exits non-zero on any failure.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [berth, image] = process.argv.slice(2);
let passed = 0, failed = 0;
function check(name, cond, detail) {
  if (cond) { passed++; console.log(`ok - ${name}`); }
  else { failed++; console.log(`not ok - ${name}${detail ? ": " + detail : ""}`); }
}

const transport = new StdioClientTransport({ command: berth, args: ["mcp"], env: process.env, stderr: "inherit" });
const client = new Client({ name: "berth-test", version: "1.0.0" });
const name = `mcp-${process.pid}`;
try {
  await client.connect(transport);
  check("initialize: server is berth", client.getServerVersion()?.name === "berth", JSON.stringify(client.getServerVersion()));
  check("ping", (await client.ping()) !== undefined);
  const { tools } = await client.listTools();
  check("tools/list has exactly the containers tool", tools.length === 1 && tools[0].name === "containers", JSON.stringify(tools.map(t => t.name)));
  const props = tools[0]?.inputSchema?.properties ?? {};
  for (const p of ["operation", "container", "command", "timeout", "image", "env", "env_passthrough", "mounts", "confirm", "host_path"])
    check(`input schema has ${p}`, p in props);

  const call = async (args, extra) => {
    const r = await client.callTool({ name: "containers", arguments: args }, undefined, extra);
    const text = r.content?.[0]?.text ?? "{}";
    return { raw: r, reply: JSON.parse(text) };
  };

  const pf = await call({ operation: "preflight" });
  check("preflight reply shape", typeof pf.reply.ready === "boolean" && pf.reply.runtime === "berth" && Array.isArray(pf.reply.checks), JSON.stringify(pf.reply).slice(0, 200));
  check("preflight ready on this host", pf.reply.ready === true, pf.reply.summary);

  let progress = 0;
  const cr = await call({ operation: "create", name, image, mount_cwd: false, env: { MCP_VAR: "from-mcp" } },
                        { onprogress: () => { progress++; } });
  check("create succeeds", cr.reply.success === true && cr.reply.container === name, JSON.stringify(cr.reply).slice(0, 300));
  check("create is not an MCP error", cr.raw.isError === false);
  check("create reports progress notifications", progress > 0, `got ${progress}`);
  check("create reply lists injected variable names", Array.isArray(cr.reply.env_vars_injected) && cr.reply.env_vars_injected.includes("MCP_VAR"));
  check("create reply has no variable values", !JSON.stringify(cr.reply).includes("from-mcp"));

  const ex = await call({ operation: "exec", container: name, command: "echo $MCP_VAR; echo oops >&2; exit 7" });
  check("exec stdout", ex.reply.stdout === "from-mcp\n", JSON.stringify(ex.reply));
  check("exec stderr", ex.reply.stderr === "oops\n", JSON.stringify(ex.reply));
  check("exec returncode", ex.reply.returncode === 7 && ex.reply.timed_out === false, JSON.stringify(ex.reply));

  const to = await call({ operation: "exec", container: name, command: "sleep 30", timeout: 1 });
  check("exec timeout", to.reply.timed_out === true, JSON.stringify(to.reply));

  const bad = await call({ operation: "exec", container: name });
  check("missing parameter is a structured error", bad.raw.isError === true && bad.reply.code === "missing_parameter" && bad.reply.field === "command", JSON.stringify(bad.reply));

  const d = await call({ operation: "destroy", container: name });
  check("destroy", d.reply.success === true && d.reply.container === name, JSON.stringify(d.reply));
  const st = await call({ operation: "status", container: name });
  check("status after destroy: not found", st.reply.error === `Container not found: ${name}`, JSON.stringify(st.reply));
} catch (e) {
  check("no exception", false, String(e?.stack ?? e));
} finally {
  await client.close().catch(() => {});
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
