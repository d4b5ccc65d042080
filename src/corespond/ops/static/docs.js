// The API reference page: fetch the OpenAPI document (with an API key where the service
// asks for one) and hand it to Swagger UI or ReDoc. The key stays in this page's memory.
"use strict";

(function () {
  const reference = document.getElementById("reference");
  const form = document.getElementById("key-form");
  const input = document.getElementById("key");
  const error = document.getElementById("key-error");

  function show(description) {
    form.hidden = true;
    if (reference.dataset.viewer === "redoc") {
      window.Redoc.init(description, {}, reference);
      return;
    }
    const bundle = window.SwaggerUIBundle;
    bundle({
      spec: description,
      domNode: reference,
      layout: "BaseLayout",
      deepLinking: true,
      showExtensions: true,
      showCommonExtensions: true,
      validatorUrl: null,
      presets: [bundle.presets.apis, bundle.SwaggerUIStandalonePreset],
    });
  }

  function ask(message) {
    form.hidden = false;
    error.textContent = message;
    input.focus();
  }

  async function load(key) {
    const headers = key ? { Authorization: "Bearer " + key } : {};
    let response;
    try {
      response = await fetch(reference.dataset.openapi, {
        headers: headers,
        credentials: "omit",
        cache: "no-store",
      });
    } catch (failure) {
      ask("The API description could not be loaded; try again.");
      return;
    }
    if (response.status === 401) {
      ask(key ? "That key is not valid." : "");
      return;
    }
    if (!response.ok) {
      ask("The API description could not be loaded (" + response.status + ").");
      return;
    }
    show(await response.json());
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    load(input.value.trim());
  });
  load("");
})();
