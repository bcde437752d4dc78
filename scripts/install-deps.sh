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

# libLLVM's debug info, for the lines benchmark (scripts/bench-lines.sh):
# Debian's debug archive, added only where it is reachable (it is not on
# every network); without it the benchmark uses another -g library.
if [[ $(id -u) -eq 0 ]] && command -v llvm-config >/dev/null && . /etc/os-release 2>/dev/null && [[ -n ${VERSION_CODENAME:-} ]]; then
	dbgsym="libllvm$(llvm-config --version | cut -d. -f1)-dbgsym"
	if ! dpkg-query -W -f='${Status}' "$dbgsym" 2>/dev/null | grep -q 'install ok installed'; then
		if curl -fsI --max-time 10 "http://deb.debian.org/debian-debug/dists/$VERSION_CODENAME-debug/Release" >/dev/null 2>&1; then
			echo "adding Debian's debug archive for $dbgsym"
			printf 'Types: deb\nURIs: http://deb.debian.org/debian-debug\nSuites: %s-debug\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
				"$VERSION_CODENAME" >/etc/apt/sources.list.d/debian-debug.sources
			apt-get update -qq
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$dbgsym" >/dev/null ||
				echo "could not install $dbgsym: the lines benchmark uses another library" >&2
		else
			echo "Debian's debug archive is not reachable: the lines benchmark uses another library than libLLVM" >&2
		fi
	fi
fi

if [[ -f internal/browser/package.json && ! -d internal/browser/node_modules ]]; then
	echo "installing npm test tools in internal/browser"
	(cd internal/browser && npm install --no-audit --no-fund --silent)
fi
