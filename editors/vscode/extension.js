// Starts the flow language server (`flow lsp`, stdio) for .flow files.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("flow");
  if (!config.get("server.enabled", true)) {
    return;
  }
  const command = config.get("server.path", "flow");
  const run = { command, args: ["lsp"], transport: TransportKind.stdio };
  const serverOptions = { run, debug: run };
  const clientOptions = {
    documentSelector: [{ scheme: "file", language: "flow" }],
    synchronize: {
      // Data files change inferred schemas: tell the server when they change.
      fileEvents: vscode.workspace.createFileSystemWatcher("**/*.{flow,csv,jsonl}"),
    },
  };
  client = new LanguageClient("flow", "flow language server", serverOptions, clientOptions);
  client.start().catch((err) => {
    vscode.window.showErrorMessage(
      `flow: could not start \`${command} lsp\` (${err.message}). Set "flow.server.path".`
    );
  });
  context.subscriptions.push({ dispose: () => client && client.stop() });
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
