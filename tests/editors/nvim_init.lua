-- A minimal init for the headless Neovim test: only editors/nvim on the runtime path, the
-- server command from FLOW_BIN.
local root = os.getenv("FLOW_REPO")
vim.opt.runtimepath:prepend(root .. "/editors/nvim")
vim.g.flow_lsp_cmd = { os.getenv("FLOW_BIN"), "lsp" }
vim.cmd("filetype plugin on")
vim.cmd("syntax on")
