#!/bin/bash
# Installs the BlitzSparseAttention custom-op package; run by the self-extracting .run
# (`custom_opp_<os>_<arch>.run [--install-path=DIR]`) from inside the extracted package.
#   --install-path=DIR  put the vendor tree at DIR/vendors/<vendor> and write
#                       DIR/vendors/<vendor>/bin/set_env.bash (source it: it prepends the
#                       vendor directory to ASCEND_CUSTOM_OPP_PATH)
#   (none)              install into $ASCEND_OPP_PATH/vendors/<vendor> and list the vendor
#                       first in $ASCEND_OPP_PATH/vendors/config.ini
set -eu
vendor_name=blitz_acl
source_dir=$PWD/packages/vendors/$vendor_name
install_path=""
for arg in "$@"; do
  case "$arg" in
    --install-path=*) install_path=${arg#--install-path=}; install_path=${install_path%/} ;;
    --quiet|--install-for-all) ;;
    *) ;;
  esac
done
[ -d "$source_dir" ] || { echo "install.sh: $source_dir not found (run from the extracted package)" >&2; exit 1; }

if [ -n "$install_path" ]; then
  target=$install_path/vendors/$vendor_name
  mkdir -p "$target"
  cp -rf "$source_dir"/. "$target"/
  mkdir -p "$target/bin"
  cat > "$target/bin/set_env.bash" <<ENV
# Makes CANN (and blitz_acl) find the $vendor_name custom-op package first.
export ASCEND_CUSTOM_OPP_PATH="$target\${ASCEND_CUSTOM_OPP_PATH:+:\$ASCEND_CUSTOM_OPP_PATH}"
export LD_LIBRARY_PATH="$target/op_api/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
ENV
  echo "installed $vendor_name to $target"
  echo "source \"$target/bin/set_env.bash\""
  exit 0
fi

opp=${ASCEND_OPP_PATH:?set ASCEND_OPP_PATH (source CANN set_env.sh) or pass --install-path=DIR}
target=$opp/vendors/$vendor_name
mkdir -p "$target"
cp -rf "$source_dir"/. "$target"/
config=$opp/vendors/config.ini
others=""
if [ -f "$config" ]; then
  others=$(sed -n 's/^load_priority=//p' "$config" | tr ',' '\n' | grep -v "^$vendor_name\$" | paste -sd, - || true)
fi
echo "load_priority=$vendor_name${others:+,$others}" > "$config"
echo "installed $vendor_name to $target (first in $config)"
