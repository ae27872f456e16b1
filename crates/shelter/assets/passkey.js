// Shelter's one script: it runs the passkey buttons. Each is a form marked
// data-passkey="create" (add a passkey) or "get" (sign in with one), hidden in the markup:
// the script shows it only where the browser has WebAuthn, so without the script every
// page works as before and no button leads nowhere. On submit it asks data-options for the
// ceremony's options (sending the fields named in data-send, as JSON or, with
// data-format="form", as a form), runs the ceremony, puts the answer in the form's
// `credential` field (and the options' flow_token in `flow_token`), and posts the form.
(() => {
  "use strict";
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  const toBytes = (text) => {
    const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const padded = base64 + "=".repeat((4 - (base64.length % 4)) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
  };

  const toText = (buffer) => {
    let binary = "";
    for (const byte of new Uint8Array(buffer)) {
      binary += String.fromCharCode(byte);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };

  const withIds = (list) => (list || []).map((item) => ({ ...item, id: toBytes(item.id) }));

  const creationOptions = (options) => ({
    ...options,
    challenge: toBytes(options.challenge),
    user: { ...options.user, id: toBytes(options.user.id) },
    excludeCredentials: withIds(options.excludeCredentials),
  });

  const requestOptions = (options) => ({
    ...options,
    challenge: toBytes(options.challenge),
    allowCredentials: withIds(options.allowCredentials),
  });

  // The WebAuthn JSON forms (RegistrationResponseJSON, AuthenticationResponseJSON).
  const answer = (credential) => {
    const response = credential.response;
    const json = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      extensions: {},
      response: { clientDataJSON: toText(response.clientDataJSON) },
    };
    if (response.attestationObject) {
      json.response.attestationObject = toText(response.attestationObject);
      if (response.getTransports) {
        json.response.transports = response.getTransports();
      }
    } else {
      json.response.authenticatorData = toText(response.authenticatorData);
      json.response.signature = toText(response.signature);
      if (response.userHandle) {
        json.response.userHandle = toText(response.userHandle);
      }
    }
    return json;
  };

  const ceremony = async (form) => {
    const sent = {};
    for (const name of (form.dataset.send || "").split(" ").filter(Boolean)) {
      sent[name] = form.elements[name].value;
    }
    const asForm = form.dataset.format === "form";
    const reply = await fetch(form.dataset.options, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "content-type": asForm ? "application/x-www-form-urlencoded" : "application/json",
      },
      body: asForm ? new URLSearchParams(sent) : JSON.stringify(sent),
    });
    if (!reply.ok) {
      throw new Error("the server answered " + reply.status);
    }
    const options = await reply.json();
    const credential =
      form.dataset.passkey === "create"
        ? await navigator.credentials.create({ publicKey: creationOptions(options.publicKey) })
        : await navigator.credentials.get({ publicKey: requestOptions(options.publicKey) });
    if (options.flow_token && form.elements.flow_token) {
      form.elements.flow_token.value = options.flow_token;
    }
    form.elements.credential.value = JSON.stringify(answer(credential));
    form.submit();
  };

  for (const form of document.querySelectorAll("form[data-passkey]")) {
    form.hidden = false;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const status = form.querySelector("[data-passkey-status]");
      ceremony(form).catch((error) => {
        if (status) {
          status.textContent = "The passkey did not work (" + (error.message || error) + "). Try again.";
          status.hidden = false;
        }
      });
    });
  }
})();
