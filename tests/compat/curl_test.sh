#!/usr/bin/env bash
# The compatible APIs by curl, as docs/compat.md shows them: OpenRouter chat completions (plain
# and streamed), the OpenAI Images API (generate, edit, a size the model cannot make), both
# model lists, and a bad token.  Only curl and coreutils: no jq, no Python.
#
#   NB_URL=http://127.0.0.1:8000 NB_TOKEN=<personal API token> bash tests/compat/curl_test.sh
#
# Prints one "ok: ..." line per check; exits non-zero at the first failure.
set -euo pipefail
: "${NB_URL:?set NB_URL to the service, e.g. http://127.0.0.1:8000}"
: "${NB_TOKEN:?set NB_TOKEN to a personal API token (POST /api/tokens)}"
WORK="${NB_WORK:-$(mktemp -d)}"
CURL=(curl -sS --noproxy '*' --max-time 60 -H "Authorization: Bearer $NB_TOKEN")
JSON=(-H 'Content-Type: application/json')

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# WIDTHxHEIGHT of a PNG, read from its IHDR chunk.
png_size() {
  local be='{print $1*16777216 + $2*65536 + $3*256 + $4}'
  echo "$(od -An -tu1 -j16 -N4 "$1" | awk "$be")x$(od -An -tu1 -j20 -N4 "$1" | awk "$be")"
}

# The base64 of the first value of JSON string field $1 in file $2 (data URL prefix dropped).
first_b64() {
  grep -o "\"$1\":\"[^\"]*\"" "$2" | head -n 1 | sed -e "s/^\"$1\":\"//" -e 's/"$//' \
    -e 's/^data:image\/[a-z]*;base64,//'
}

expect_png() {  # file, expected size, label
  local size
  [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "$3: not a PNG"
  size=$(png_size "$1")
  [ "$size" = "$2" ] || fail "$3: image is $size, expected $2"
  ok "$3 ($size PNG)"
}

# 1. OpenRouter chat completion, the image in choices[0].message.images.
code=$("${CURL[@]}" "${JSON[@]}" -o "$WORK/chat.json" -w '%{http_code}' \
  "$NB_URL/api/v1/chat/completions" -d '{
    "model": "google/gemini-2.5-flash-image",
    "messages": [{"role": "user", "content": "a red fox in the snow"}],
    "modalities": ["image", "text"],
    "image_config": {"aspect_ratio": "16:9"}}')
[ "$code" = 200 ] || fail "chat completion: HTTP $code: $(head -c 300 "$WORK/chat.json")"
grep -q '"object":"chat.completion"' "$WORK/chat.json" || fail "chat completion: not a completion"
grep -q '"cost":' "$WORK/chat.json" || fail "chat completion: no usage.cost"
first_b64 url "$WORK/chat.json" | base64 -d > "$WORK/fox.png"
expect_png "$WORK/fox.png" 1344x768 "chat completion"

# 2. The same, streamed: keep-alive comments, delta.images, usage, [DONE].
"${CURL[@]}" "${JSON[@]}" -N -o "$WORK/stream.txt" "$NB_URL/api/v1/chat/completions" -d '{
    "model": "google/gemini-2.5-flash-image",
    "messages": [{"role": "user", "content": "a lighthouse at dusk"}],
    "modalities": ["image", "text"], "stream": true}'
head -n 1 "$WORK/stream.txt" | grep -qx ': OPENROUTER PROCESSING' || fail "stream: no keep-alive first"
grep -q '"delta":{"role":"assistant","content":"","images":\[' "$WORK/stream.txt" \
  || fail "stream: no delta.images"
grep -q '"usage":{' "$WORK/stream.txt" || fail "stream: no usage"
[ "$(grep -v '^$' "$WORK/stream.txt" | tail -n 1)" = 'data: [DONE]' ] || fail "stream: no [DONE]"
first_b64 url "$WORK/stream.txt" | base64 -d > "$WORK/lighthouse.png"
expect_png "$WORK/lighthouse.png" 1024x1024 "streamed chat completion"

# 3. OpenAI images/generations.
code=$("${CURL[@]}" "${JSON[@]}" -o "$WORK/gen.json" -w '%{http_code}' \
  "$NB_URL/v1/images/generations" -d '{
    "model": "gemini-2.5-flash-image", "prompt": "a red fox", "size": "1024x1024"}')
[ "$code" = 200 ] || fail "images/generations: HTTP $code: $(head -c 300 "$WORK/gen.json")"
first_b64 b64_json "$WORK/gen.json" | base64 -d > "$WORK/gen.png"
expect_png "$WORK/gen.png" 1024x1024 "images/generations"

# 4. OpenAI images/edits, multipart.
code=$("${CURL[@]}" -o "$WORK/edit.json" -w '%{http_code}' "$NB_URL/v1/images/edits" \
  -F "image=@$WORK/fox.png;type=image/png" -F prompt="make the sky purple" \
  -F model=gemini-2.5-flash-image -F size=1344x768)
[ "$code" = 200 ] || fail "images/edits: HTTP $code: $(head -c 300 "$WORK/edit.json")"
first_b64 b64_json "$WORK/edit.json" | base64 -d > "$WORK/edit.png"
expect_png "$WORK/edit.png" 1344x768 "images/edits"

# 5. A size the model cannot make: the nearest it makes, said in a header; not WxH: a 400.
code=$("${CURL[@]}" "${JSON[@]}" -o "$WORK/near.json" -D "$WORK/near.headers" \
  -w '%{http_code}' "$NB_URL/v1/images/generations" -d '{
    "model": "gemini-2.5-flash-image", "prompt": "a red fox", "size": "1536x1024"}')
[ "$code" = 200 ] || fail "nearest size: HTTP $code: $(head -c 300 "$WORK/near.json")"
first_b64 b64_json "$WORK/near.json" | base64 -d > "$WORK/near.png"
expect_png "$WORK/near.png" 1248x832 "nearest size"
grep -qi '^nanobanana-warning: size 1536x1024 is not one' "$WORK/near.headers" \
  || fail "nearest size: no warning header"
code=$("${CURL[@]}" "${JSON[@]}" -o "$WORK/bad-size.json" -w '%{http_code}' \
  "$NB_URL/v1/images/generations" -d '{
    "model": "gemini-2.5-flash-image", "prompt": "a red fox", "size": "wide"}')
[ "$code" = 400 ] || fail "bad size: HTTP $code"
grep -q '"param":"size"' "$WORK/bad-size.json" || fail "bad size: no param"
ok "a size the model lacks gets the nearest (with a warning); a malformed one is a 400"

# 6. Model lists.
"${CURL[@]}" -o "$WORK/or-models.json" "$NB_URL/api/v1/models?output_modalities=image"
grep -q '"id":"black-forest-labs/flux.2-pro"' "$WORK/or-models.json" || fail "models: no flux"
grep -q '"output_modalities":\["image","text"\]' "$WORK/or-models.json" || fail "models: shape"
"${CURL[@]}" -o "$WORK/oa-models.json" "$NB_URL/v1/models"
grep -q '"object":"list"' "$WORK/oa-models.json" || fail "v1/models: not a list"
ok "model lists"

# 7. A wrong token: 401 in OpenRouter's error shape.
code=$(curl -sS --noproxy '*' -o "$WORK/401.json" -w '%{http_code}' \
  -H 'Authorization: Bearer wrong' "${JSON[@]}" "$NB_URL/api/v1/chat/completions" -d '{}')
[ "$code" = 401 ] || fail "bad token: HTTP $code"
grep -q '"error":{"code":401' "$WORK/401.json" || fail "bad token: not OpenRouter's shape"
ok "bad token is a 401"
