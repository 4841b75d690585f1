-- flow for Neovim: starts the language server `flow lsp` (stdio) for .flow buffers with the
-- built-in LSP client. Works on Neovim 0.7 (vim.lsp.start_client) and later (vim.lsp.start).
--
--   require("flow").setup({ cmd = { "/path/to/flow", "lsp" } })   -- optional
--
-- Options (also settable before startup as `vim.g.flow_lsp_cmd` / `vim.g.flow_lsp_disabled`):
--   cmd        the server command (default { "flow", "lsp" })
--   enabled    false: syntax highlighting only
--   workspace  false: check only open files (default: every .flow file under the root is
--              checked together, as `flow run a.flow b.flow` would)
--   root_dir   function(path) -> the folder whose .flow files are one job (default: the file's
--              directory)
local M = {}

M.options = {
  cmd = nil,
  enabled = true,
  workspace = true,
  root_dir = function(path)
    return vim.fn.fnamemodify(path, ":p:h")
  end,
}

function M.setup(opts)
  M.options = vim.tbl_extend("force", M.options, opts or {})
end

local function command()
  if M.options.cmd then
    return M.options.cmd
  end
  local g = vim.g.flow_lsp_cmd
  if type(g) == "string" then
    return { g, "lsp" }
  elseif type(g) == "table" then
    return g
  end
  return { "flow", "lsp" }
end

-- One client per root folder (Neovim 0.7 has no vim.lsp.start to reuse them for us).
local clients = {}

function M.start(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if not M.options.enabled or vim.g.flow_lsp_disabled then
    return nil
  end
  local path = vim.api.nvim_buf_get_name(bufnr)
  if path == "" then
    return nil
  end
  local root = M.options.root_dir(path)
  local config = {
    name = "flow",
    cmd = command(),
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = root } },
    init_options = { workspace = M.options.workspace },
  }
  if vim.lsp.start then
    return vim.lsp.start(config, { bufnr = bufnr })
  end
  local id = clients[root]
  if not id or vim.lsp.client_is_stopped(id) then
    id = vim.lsp.start_client(config)
    clients[root] = id
  end
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  end
  return id
end

return M
