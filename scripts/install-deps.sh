#!/usr/bin/env bash
# Installs what `make test` needs on a fresh Debian machine: the packages in
# scripts/debian-packages.txt and the npm test tools of internal/browser.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
while read -r pkg; do
	pkg=${pkg%%#*}
	pkg=$(echo "$pkg" | tr -d '[:space:]')
	[[ -z $pkg ]] && continue
	dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done < scripts/debian-packages.txt

if ((${#missing[@]})); then
	echo "installing Debian packages: ${missing[*]}"
	if [[ $(id -u) -ne 0 ]]; then
		echo "not root: cannot install ${missing[*]}; install them with apt-get" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ -f internal/browser/package.json && ! -d internal/browser/node_modules ]]; then
	echo "installing npm test tools in internal/browser"
	(cd internal/browser && npm install --no-audit --no-fund --silent)
fi
