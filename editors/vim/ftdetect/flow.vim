" flow pipeline language: detect .flow files
autocmd BufRead,BufNewFile *.flow setfiletype flow
