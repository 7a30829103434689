#!/usr/bin/env bash
# The upload stage: sync the split to s3://$BUCKET/$DATA_PREFIX/. aws s3 sync sends only
# what changed; --delete removes stale files under the prefix, which SageMaker would
# otherwise feed to the job as channel data. The bucket is made by `make bootstrap`.
# Needs: BUCKET, DATA_PREFIX, AWS_REGION, SPLIT_DIR
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

main() {
  require_var BUCKET DATA_PREFIX AWS_REGION SPLIT_DIR
  require_cmd aws
  [[ -f "$SPLIT_DIR/manifest.json" ]] || die "$SPLIT_DIR/manifest.json is missing; run 'make data' first"
  local state
  state=$(bucket_state) # a die inside $(...) ends only the subshell: assigning lets set -e stop here
  case "$state" in
    missing) die "bucket s3://$BUCKET does not exist; run 'make bootstrap' once (as an administrator on AWS), then rerun" ;;
    forbidden) die "bucket s3://$BUCKET exists but you may not use it (403: another account's name, or no s3:GetBucketLocation); choose another BUCKET or attach the runner policy" ;;
  esac
  log "aws s3 sync $SPLIT_DIR/ s3://$BUCKET/$DATA_PREFIX/"
  aws s3 sync --delete --no-progress "$SPLIT_DIR/" "s3://$BUCKET/$DATA_PREFIX/" >&2
}

main "$@"
