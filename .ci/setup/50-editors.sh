# Editors (tests/editors.rs): headless Neovim from Debian, and the VS Code extension's npm packages
# (typescript, vscode-tmgrammar-test, the language client and type declarations; ~30 MB) installed
# once into a cache keyed by editors/vscode/package-lock.json, linked as editors/vscode/node_modules.
if ! command -v nvim >/dev/null 2>&1; then
  ci_apt_install --no-install-recommends neovim
fi
if ! command -v npm >/dev/null 2>&1; then
  ci_apt_install --no-install-recommends nodejs npm
fi
editors_lock="editors/vscode/package-lock.json"
editors_key=$(sha256sum "$editors_lock" | cut -c1-16)
editors_cache="${HOME}/.cache/flow-editors/${editors_key}"
if [ ! -x "$editors_cache/node_modules/.bin/vscode-tmgrammar-test" ]; then
  rm -rf "$editors_cache"
  mkdir -p "$editors_cache"
  cp editors/vscode/package.json "$editors_lock" "$editors_cache/"
  (cd "$editors_cache" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
fi
if [ ! -e editors/vscode/node_modules ]; then
  ln -s "$editors_cache/node_modules" editors/vscode/node_modules
fi
