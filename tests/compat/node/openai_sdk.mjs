// OpenAI's Node SDK (the `openai` package, as published on npm) against a nanobanana service,
// with only its base URL and key changed.  Run by tests/compat/test_openai_node.py:
//   NB_URL=http://127.0.0.1:PORT NB_TOKEN=... node openai_sdk.mjs
// It prints one JSON object: what each call gave, for the test to check.
import OpenAI, { toFile } from "openai";

const base = process.env.NB_URL;
const apiKey = process.env.NB_TOKEN;
const images = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0 });
const chat = new OpenAI({ baseURL: `${base}/api/v1`, apiKey, maxRetries: 0 });
const out = {};

function pngFromDataUrl(url) {
  const [head, data] = url.split(",", 2);
  return { type: head.slice("data:".length, head.indexOf(";")), b64: data };
}

async function failure(call) {
  try {
    await call();
  } catch (err) {
    if (!(err instanceof OpenAI.APIError)) throw err;
    return {
      class: err.constructor.name,
      status: err.status,
      code: err.code ?? null,
      param: err.param ?? null,
      message: err.message,
    };
  }
  return null;
}

// Images API: generate two, then edit one of them (a file upload, multipart).
const generated = await images.images.generate({
  model: "gemini-3.1-flash-image",
  prompt: "a red fox in the snow",
  size: "1344x768",
  n: 2,
});
out.generate = {
  b64: generated.data.map((d) => d.b64_json),
  size: generated.size,
  output_format: generated.output_format,
  usage: generated.usage,
};

const fox = Buffer.from(generated.data[0].b64_json, "base64");
const edited = await images.images.edit({
  model: "gemini-3.1-flash-image",
  prompt: "make the sky purple",
  image: await toFile(fox, "fox.png", { type: "image/png" }),
});
out.edit = { b64: edited.data.map((d) => d.b64_json), usage: edited.usage };

const asUrl = await images.images.generate({ prompt: "an owl", response_format: "url" });
out.url = asUrl.data[0].url;

// Chat completions with OpenRouter's image fields (the SDK sends unknown fields as given).
const answer = await chat.chat.completions.create({
  model: "google/gemini-3.1-flash-image",
  messages: [{ role: "user", content: "a lighthouse at dusk" }],
  modalities: ["image", "text"],
  image_config: { aspect_ratio: "16:9" },
});
out.chat = {
  images: answer.choices[0].message.images.map((i) => pngFromDataUrl(i.image_url.url)),
  finish_reason: answer.choices[0].finish_reason,
  provider: answer.provider,
};

const stream = await chat.chat.completions.create({
  model: "nano-banana-2",
  messages: [{ role: "user", content: "a paper boat" }],
  modalities: ["image", "text"],
  image_config: { aspect_ratio: "1:4" },
  stream: true,
});
const streamed = [];
let finish = null;
for await (const chunk of stream) {
  if (!chunk.choices.length) continue;
  for (const i of chunk.choices[0].delta.images ?? []) streamed.push(pngFromDataUrl(i.image_url.url));
  finish = chunk.choices[0].finish_reason ?? finish;
}
out.stream = { images: streamed, finish_reason: finish };

// Listings, paged by the SDK.
out.models = [];
for await (const model of chat.models.list()) out.models.push(model.id);
out.image_models = [];
for await (const model of images.models.list()) out.image_models.push(model.id);

// Errors arrive as the SDK's typed errors, with the service's sentence.
out.errors = {
  bad_size: await failure(() =>
    images.images.generate({ model: "gemini-3.1-flash-image", prompt: "x", size: "big" }),
  ),
  unknown_model: await failure(() =>
    chat.chat.completions.create({
      model: "no-such/model",
      messages: [{ role: "user", content: "x" }],
      modalities: ["image", "text"],
    }),
  ),
  bad_token: await failure(() =>
    new OpenAI({ baseURL: `${base}/v1`, apiKey: "nbt_not-a-token", maxRetries: 0 }).images.generate({
      prompt: "x",
    }),
  ),
};

process.stdout.write(JSON.stringify(out));
