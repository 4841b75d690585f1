// Starts the flow language server (`flow lsp`, over stdio) for .flow files.
import * as vscode from "vscode";
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const config = vscode.workspace.getConfiguration("flow");
  if (!config.get<boolean>("server.enabled", true)) {
    return;
  }
  const command = config.get<string>("server.path", "flow");
  const run = { command, args: ["lsp"], transport: TransportKind.stdio };
  const serverOptions: ServerOptions = { run, debug: run };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file", language: "flow" }],
    initializationOptions: { workspace: config.get<boolean>("server.workspace", true) },
    synchronize: {
      // Scripts of the workspace and the data files whose schemas are inferred.
      fileEvents: vscode.workspace.createFileSystemWatcher("**/*.{flow,csv,tsv,jsonl}"),
    },
  };
  client = new LanguageClient("flow", "flow language server", serverOptions, clientOptions);
  context.subscriptions.push({ dispose: () => void client?.stop() });
  try {
    await client.start();
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    void vscode.window.showErrorMessage(
      `flow: could not start \`${command} lsp\` (${why}). Set "flow.server.path".`,
    );
  }
}

export function deactivate(): Thenable<void> | undefined {
  return client?.stop();
}
