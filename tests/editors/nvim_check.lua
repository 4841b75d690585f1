-- Run by tests/editors.rs: `nvim --headless --clean -u tests/editors/nvim_init.lua`.
-- Opens FLOW_NVIM_FILE (a .flow script with one error) with the plugin of editors/nvim, waits for
-- the language server's diagnostics, asks for a hover, and writes what arrived to FLOW_NVIM_OUT
-- as JSON. Every wait has a deadline; the Rust side also kills nvim if it hangs.
local out = os.getenv("FLOW_NVIM_OUT")
local result = { errors = {} }

local function finish()
  local f = io.open(out, "w")
  f:write(vim.fn.json_encode(result))
  f:close()
  vim.cmd("qa!")
end

local ok, err = pcall(function()
  vim.cmd("edit " .. vim.fn.fnameescape(os.getenv("FLOW_NVIM_FILE")))
  result.filetype = vim.bo.filetype
  -- The syntax group of the `filter` keyword (the vim syntax file, through editors/nvim).
  local pos = vim.fn.searchpos("\\<filter\\>", "nw")
  result.filter_syntax = vim.fn.synIDattr(vim.fn.synID(pos[1], pos[2], 1), "name")

  local got = vim.wait(20000, function()
    return #vim.diagnostic.get(0) > 0
  end, 50)
  result.diagnostics = {}
  for _, d in ipairs(vim.diagnostic.get(0)) do
    table.insert(result.diagnostics, {
      code = d.code,
      lnum = d.lnum,
      col = d.col,
      message = d.message,
    })
  end
  if not got then
    table.insert(result.errors, "no diagnostics within 20 s")
  end

  -- Hover over the first `fare` read by a stage.
  local fare = vim.fn.searchpos("\\<fare\\> >", "nw")
  local params = {
    textDocument = vim.lsp.util.make_text_document_params(),
    position = { line = fare[1] - 1, character = fare[2] - 1 },
  }
  local replies = vim.lsp.buf_request_sync(0, "textDocument/hover", params, 10000)
  result.hover = {}
  for _, r in pairs(replies or {}) do
    if r.result and r.result.contents then
      table.insert(result.hover, r.result.contents.value)
    end
    if r.err then
      table.insert(result.errors, vim.inspect(r.err))
    end
  end
end)
if not ok then
  table.insert(result.errors, tostring(err))
end
finish()
