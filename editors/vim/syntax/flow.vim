" Vim syntax file
" Language:    flow (typed pipeline language)
" Filenames:   *.flow
" Install:     copy (or symlink) syntax/ and ftdetect/ into ~/.vim/ (or use a plugin manager
"              pointed at editors/vim).

if exists("b:current_syntax")
  finish
endif

syn case match

" Items and keywords
syn keyword flowDecl        schema source fn let nextgroup=flowDeclName skipwhite
syn match   flowDeclName    "\<[A-Za-z_][A-Za-z0-9_]*\>" contained
syn keyword flowKeyword     mode use
syn keyword flowMode        single multi auto
syn keyword flowConditional if else
syn keyword flowStage       filter map group union limit sort distinct join sink
syn keyword flowPolicy      fail skip dead_letter

" Types (a trailing ? marks a nullable type)
syn keyword flowType        int float bool str timestamp
syn match   flowNullable    "\(\<\(int\|float\|bool\|str\|timestamp\)\)\@<=?"

" Constants
syn keyword flowBoolean     true false
syn keyword flowNull        null
syn match   flowNumber      "\<\d\+\>"
syn match   flowFloat       "\<\d\+\.\d\+\([eE][+-]\=\d\+\)\=\>"
syn match   flowFloat       "\<\d\+[eE][+-]\=\d\+\>"

" Strings with the escapes \n \t \" \\ ; any other escape is an error (E0006)
syn region  flowString      start=+"+ skip=+\\\\\|\\"+ end=+"+ contains=flowEscape,flowBadEscape oneline
syn match   flowBadEscape   +\\.+ contained
syn match   flowEscape      +\\[nt"\\]+ contained

" Calls: aggregates, connectors, builtins, module functions
syn match   flowAggregate   "\<\(count_distinct\|count\|sum\|min\|max\|avg\|first\|last\)\ze\s*("
syn match   flowConnector   "\<\(csv\|jsonl\|stdin\|stdout\)\ze\s*("
syn match   flowBuiltin     "\<\(len\|upper\|lower\|trim\|contains\|starts_with\|ends_with\|substr\|replace\|concat\|abs\|round\|floor\|ceil\|sqrt\|to_int\|to_float\|to_str\|parse_int\|parse_float\|parse_timestamp\|from_unix\|unix\|is_null\)\ze\s*("
syn match   flowModuleCall  "\<[A-Za-z_][A-Za-z0-9_]*\.\ze[A-Za-z_][A-Za-z0-9_]*\s*("

" Hints
syn match   flowHint        "@\(parallel\|batch\|on_error\)\>"

" Operators
syn match   flowOperator    "??\|&&\|||\|==\|!=\|<=\|>=\|->\|[<>!+\-*/%|=]"

" Comments: ## doc lines (with example: lines) and # comments
syn match   flowComment     "#.*$" contains=flowTodo
syn match   flowDocComment  "##.*$" contains=flowDocExample,flowTodo
syn match   flowDocExample  "example:" contained
syn keyword flowTodo        TODO FIXME XXX NOTE contained

hi def link flowDecl        StorageClass
hi def link flowDeclName    Identifier
hi def link flowKeyword     Keyword
hi def link flowMode        Constant
hi def link flowConditional Conditional
hi def link flowStage       Statement
hi def link flowPolicy      Constant
hi def link flowType        Type
hi def link flowNullable    Type
hi def link flowBoolean     Boolean
hi def link flowNull        Constant
hi def link flowNumber      Number
hi def link flowFloat       Float
hi def link flowString      String
hi def link flowEscape      SpecialChar
hi def link flowBadEscape   Error
hi def link flowAggregate   Function
hi def link flowConnector   Special
hi def link flowBuiltin     Function
hi def link flowModuleCall  Include
hi def link flowHint        PreProc
hi def link flowOperator    Operator
hi def link flowComment     Comment
hi def link flowDocComment  SpecialComment
hi def link flowDocExample  Todo
hi def link flowTodo        Todo

let b:current_syntax = "flow"
