#!/usr/bin/env bash
# The push stage: tag the built image with a name derived from its content (the image id,
# i.e. the digest of its config), log in, push it with retries, and record what was pushed
# in $IMAGE_RECORD. The same content always gets the same tag, so with ECR's immutable tags
# a push of an image that is already there is a no-op (after checking that the remote image
# really has this content), and a different image can never reuse a tag.
# Needs: IMAGE_NAME, ECR_REPOSITORY, AWS_REGION, IMAGE_RECORD; optional ECR_REGISTRY_OVERRIDE
# (the embedded stack's registry, 127.0.0.1:PORT) and LOCAL_EMULATOR=moto.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "$0")/lib.sh"

readonly PUSH_TRIES=4

require_repository() {
  local err
  if ! err=$(aws ecr describe-repositories --repository-names "$ECR_REPOSITORY" 2>&1 >/dev/null); then
    grep -q RepositoryNotFoundException <<<"$err" &&
      die "ECR repository $ECR_REPOSITORY does not exist; run 'make bootstrap' once (as an administrator on AWS), then rerun"
    die "cannot query ECR repository $ECR_REPOSITORY ($(tail -n 1 <<<"$err")); $(endpoint_hint)"
  fi
}

registry_host() {
  if [[ -n "${ECR_REGISTRY_OVERRIDE:-}" ]]; then
    printf '%s\n' "$ECR_REGISTRY_OVERRIDE"
    return
  fi
  local uri
  uri=$(aws ecr describe-repositories --repository-names "$ECR_REPOSITORY" --query 'repositories[0].repositoryUri' --output text)
  printf '%s\n' "${uri%%/*}"
}

login() {
  # get-login-password exists in awscli v1 (>= 1.17.10) and v2; the old get-login does not in v2.
  aws ecr get-login-password --region "$AWS_REGION" |
    docker login --username AWS --password-stdin "$REGISTRY" >/dev/null 2>&1 ||
    die "docker login to $REGISTRY failed; check your credentials (aws sts get-caller-identity) and ecr:GetAuthorizationToken"
}

remote_digest() { # the manifest digest ECR holds for a tag, empty if none
  aws ecr describe-images --repository-name "$ECR_REPOSITORY" --image-ids "imageTag=$1" \
    --query 'imageDetails[0].imageDigest' --output text 2>/dev/null | grep '^sha256:' || true
}

remote_config_digest() { # the image id (config digest) inside the manifest ECR holds for a tag
  aws ecr batch-get-image --repository-name "$ECR_REPOSITORY" --image-ids "imageTag=$1" \
    --accepted-media-types application/vnd.docker.distribution.manifest.v2+json application/vnd.oci.image.manifest.v1+json \
    --query 'images[0].imageManifest' --output text |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["config"]["digest"])'
}

push_with_retries() {
  local uri=$1 delay=2 n output
  for ((n = 1; n <= PUSH_TRIES; n++)); do
    if output=$(docker push "$uri" 2>&1); then
      grep -oE 'digest: sha256:[0-9a-f]{64}' <<<"$output" | head -n 1 | cut -d' ' -f2
      return 0
    fi
    log "push attempt $n/$PUSH_TRIES failed: $(tail -n 1 <<<"$output")"
    # A tag that exists can never be pushed again: retrying would fail the same way.
    if grep -qi 'tag invalid\|ImageTagAlreadyExists\|immutable' <<<"$output"; then
      die "ECR refused $uri: the tag exists already with other content ($(tail -n 1 <<<"$output")); delete that image or rebuild"
    fi
    # ECR tokens last 12 hours: a long run (or a cron job's reused login) sees them expire.
    if grep -qiE 'token has expired|no basic auth credentials|authorization|denied|401' <<<"$output"; then
      log "logging in to $REGISTRY again"
      login
    fi
    ((n < PUSH_TRIES)) && sleep "$delay"
    delay=$((delay * 2))
  done
  die "docker push $uri failed $PUSH_TRIES times: $(tail -n 1 <<<"$output"); check the network and ECR permissions (ecr:InitiateLayerUpload, ecr:PutImage)"
}

# moto has no layer-upload API, so the embedded registry holds the image and moto's ECR gets
# its manifest, keeping describe-images, batch-get-image and clean-up the same as on AWS.
register_with_emulator() {
  local tag=$1 digest=$2 manifest
  manifest=$(mktemp)
  curl -fsS -o "$manifest" -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/$ECR_REPOSITORY/manifests/$tag" || die "could not read the manifest of $tag back from $REGISTRY"
  aws ecr put-image --repository-name "$ECR_REPOSITORY" --image-tag "$tag" --image-digest "$digest" \
    --image-manifest "file://$manifest" >/dev/null 2>&1 || true
  rm -f "$manifest"
}

write_record() {
  local uri=$1 digest=$2 tag=$3 image_id=$4 partial
  mkdir -p "$(dirname "$IMAGE_RECORD")"
  partial=$(mktemp "$IMAGE_RECORD.XXXXXX")
  python3 - "$partial" "$uri" "$digest" "$tag" "$image_id" "$ECR_REPOSITORY" "$REGISTRY" <<'PY'
import json, sys
from datetime import datetime, timezone
path, uri, digest, tag, image_id, repository, registry = sys.argv[1:]
record = {"image_uri": uri, "digest": digest, "tag": tag, "image_id": image_id, "repository": repository,
          "registry": registry, "pushed_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
open(path, "w", encoding="utf-8").write(json.dumps(record, indent=2) + "\n")
PY
  mv "$partial" "$IMAGE_RECORD"
}

main() {
  require_var IMAGE_NAME ECR_REPOSITORY AWS_REGION IMAGE_RECORD
  require_cmd aws python3
  require_docker
  local image_id
  image_id=$(docker image inspect --format '{{.Id}}' "$IMAGE_NAME" 2>/dev/null) || die "image $IMAGE_NAME is not built; run 'make build' first"
  require_repository
  REGISTRY=$(registry_host)
  local tag="sha256-${image_id#sha256:}" uri existing digest
  uri="$REGISTRY/$ECR_REPOSITORY:$tag"
  existing=$(remote_digest "$tag")
  docker tag "$IMAGE_NAME" "$uri"
  if [[ -n "$existing" ]]; then
    local remote_config
    remote_config=$(remote_config_digest "$tag") || die "cannot read the manifest of $uri from ECR (ecr:BatchGetImage)"
    [[ "$remote_config" == "$image_id" ]] ||
      die "ECR holds $uri with image id $remote_config, not the built $image_id; the tag was written by something else: delete it (aws ecr batch-delete-image) and rerun"
    log "$uri is already in ECR ($existing) with exactly this content; nothing to push"
    digest=$existing
  else
    login
    log "docker push $uri"
    digest=$(push_with_retries "$uri")
    [[ -n "$digest" ]] || digest=$(docker image inspect --format '{{join .RepoDigests "\n"}}' "$uri" | grep -F "$REGISTRY/$ECR_REPOSITORY@" | head -n 1 | cut -d@ -f2)
    [[ "${LOCAL_EMULATOR:-}" == moto ]] && register_with_emulator "$tag" "$digest"
  fi
  write_record "$uri" "$digest" "$tag" "$image_id"
  log "pushed $uri ($digest)"
}

main "$@"
