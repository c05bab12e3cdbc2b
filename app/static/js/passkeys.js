// Passkeys (WebAuthn) for the forms made by templates/passkeys/_ask.html:
// fetch options (a fresh server-side challenge), ask the browser, post its
// answer in the form. Forms stay hidden where WebAuthn is missing. A form
// marked data-conditional also offers passkeys in the username autofill.
(function () {
  'use strict';
  if (!window.PublicKeyCredential || !navigator.credentials) return;
  var PKC = window.PublicKeyCredential;

  function toBytes(text) {  // base64url -> ArrayBuffer
    var binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
    return Uint8Array.from(binary, function (c) { return c.charCodeAt(0); }).buffer;
  }

  function toText(buffer) {  // ArrayBuffer -> base64url
    var binary = String.fromCharCode.apply(null, new Uint8Array(buffer));
    return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  // Browsers without the JSON helpers (before 2024) get the bytes decoded here.
  function creationOptions(o) {
    if (PKC.parseCreationOptionsFromJSON) return PKC.parseCreationOptionsFromJSON(o);
    o.challenge = toBytes(o.challenge);
    o.user.id = toBytes(o.user.id);
    (o.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return o;
  }

  function requestOptions(o) {
    if (PKC.parseRequestOptionsFromJSON) return PKC.parseRequestOptionsFromJSON(o);
    o.challenge = toBytes(o.challenge);
    (o.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return o;
  }

  function answer(credential) {
    if (credential.toJSON) return JSON.stringify(credential.toJSON());
    var r = credential.response;
    var out = {id: credential.id, rawId: toText(credential.rawId), type: credential.type,
               response: {clientDataJSON: toText(r.clientDataJSON)}};
    if (r.attestationObject) {
      out.response.attestationObject = toText(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = toText(r.authenticatorData);
      out.response.signature = toText(r.signature);
      if (r.userHandle) out.response.userHandle = toText(r.userHandle);
    }
    return JSON.stringify(out);
  }

  var RELOAD = 'reload';

  function fetchOptions(form) {
    return fetch(form.getAttribute('data-options'), {
      method: 'POST', credentials: 'same-origin',
      headers: {'X-CSRFToken': form.elements.csrf_token.value, 'Accept': 'application/json'}
    }).then(function (response) {
      var json = (response.headers.get('Content-Type') || '').indexOf('application/json') === 0;
      if (!json) {  // sent elsewhere (proof too old, signed out): show that page
        window.location.reload();
        throw new Error(RELOAD);
      }
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.error || form.getAttribute('data-msg-retry'));
        return body;
      });
    });
  }

  function submit(form, credential) {
    form.elements.credential.value = answer(credential);
    form.querySelectorAll('input[data-from]').forEach(function (input) {
      var box = document.getElementById(input.getAttribute('data-from'));
      input.value = box && box.checked ? '1' : '';
    });
    form.submit();
  }

  // Our own words come from the page, in its language (data-msg-*).
  function failed(form, error) {
    if (error.message === RELOAD || error.name === 'AbortError') return;
    form.querySelector('[role=status]').textContent = error.name === 'NotAllowedError'
      ? form.getAttribute('data-msg-unused') : error.message || form.getAttribute('data-msg-failed');
  }

  var autofill = null;  // the conditional request, ended before any other

  function ask(form, conditional) {
    if (autofill) { autofill.abort(); autofill = null; }
    var controller = new AbortController();
    if (conditional) autofill = controller;
    var create = form.getAttribute('data-passkey') === 'create';
    fetchOptions(form).then(function (options) {
      if (create) return navigator.credentials.create({publicKey: creationOptions(options)});
      return navigator.credentials.get({
        publicKey: requestOptions(options), signal: controller.signal,
        mediation: conditional ? 'conditional' : 'optional'
      });
    }).then(function (credential) {
      if (credential) submit(form, credential);
    }).catch(function (error) { failed(form, error); });
  }

  document.addEventListener('DOMContentLoaded', function () {
    document.querySelectorAll('form[data-passkey]').forEach(function (form) {
      form.hidden = false;
      form.querySelector('button').addEventListener('click', function () { ask(form, false); });
      if (form.hasAttribute('data-conditional') && PKC.isConditionalMediationAvailable) {
        PKC.isConditionalMediationAvailable().then(function (yes) { if (yes) ask(form, true); });
      }
    });
  });
})();
