-- .flow buffers: comments, and the flow language server.
vim.bo.commentstring = "# %s"
vim.bo.comments = ":##,:#"
require("flow").start(0)
