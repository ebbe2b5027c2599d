// Large files on the submission page go through the resumable chunk API (/api/uploads/, spinebench.uploads.api):
// the file is hashed (SHA-256, computed here in pieces, so a multi-GB file is never held in memory), a session is
// created, chunks are PUT at the server's offset with their own SHA-256, and a chunk that fails (a dropped
// connection, a corrupted body) is retried from the offset the server reports. Once finalised, the form is sent
// with the session's id in its hidden `upload` field instead of the file. Without JavaScript the form uploads the
// file in one request, as before.
//
// Markup: a container with data-chunked-upload, data-api (the sessions URL), data-kind (the file's kind) and
// data-chunk-bytes (chunk size; larger files go chunked) holding the form, a <progress> and an aria-live status.
(function () {
  "use strict";

  // SHA-256 (FIPS 180-4): 64 rounds over 512-bit blocks; the running state lets a file be hashed piece by piece.
  var K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
  ]);

  function Sha256() {
    this.state = new Uint32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
    ]);
    this.block = new Uint8Array(64);
    this.filled = 0;
    this.length = 0; // bytes hashed so far
    this.words = new Uint32Array(64);
  }

  function rotr(x, n) { return (x >>> n) | (x << (32 - n)); }

  Sha256.prototype.compress = function (bytes, at) {
    var w = this.words, s = this.state, i;
    for (i = 0; i < 16; i++) {
      w[i] = (bytes[at + 4 * i] << 24) | (bytes[at + 4 * i + 1] << 16) | (bytes[at + 4 * i + 2] << 8) | bytes[at + 4 * i + 3];
    }
    for (i = 16; i < 64; i++) {
      var s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      var s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
    }
    var a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
    for (i = 0; i < 64; i++) {
      var t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) | 0;
      var t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
      h = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    s[0] += a; s[1] += b; s[2] += c; s[3] += d; s[4] += e; s[5] += f; s[6] += g; s[7] += h;
  };

  Sha256.prototype.update = function (bytes) {
    var at = 0;
    this.length += bytes.length;
    if (this.filled) {
      var take = Math.min(64 - this.filled, bytes.length);
      this.block.set(bytes.subarray(0, take), this.filled);
      this.filled += take;
      at = take;
      if (this.filled < 64) { return this; }
      this.compress(this.block, 0);
      this.filled = 0;
    }
    for (; at + 64 <= bytes.length; at += 64) { this.compress(bytes, at); }
    this.block.set(bytes.subarray(at), 0);
    this.filled = bytes.length - at;
    return this;
  };

  Sha256.prototype.hex = function () {
    var bits = this.length * 8, tail = new Uint8Array(((this.filled < 56) ? 64 : 128) - this.filled), i;
    tail[0] = 0x80;
    var high = Math.floor(bits / 0x100000000), low = bits >>> 0;
    for (i = 0; i < 4; i++) {
      tail[tail.length - 8 + i] = (high >>> (24 - 8 * i)) & 0xff;
      tail[tail.length - 4 + i] = (low >>> (24 - 8 * i)) & 0xff;
    }
    this.update(tail);
    var out = "";
    for (i = 0; i < 8; i++) { out += (this.state[i] >>> 0).toString(16).padStart(8, "0"); }
    return out;
  };

  function readSlice(file, start, end) {
    return file.slice(start, end).arrayBuffer().then(function (buffer) { return new Uint8Array(buffer); });
  }

  function csrfToken(form) {
    var field = form.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function sleep(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function Uploader(root) {
    this.root = root;
    this.form = root.querySelector("form");
    this.input = this.form.querySelector("input[type=file]");
    this.progress = root.querySelector("[data-upload-progress]");
    this.status = root.querySelector("[data-upload-status]");
    this.api = root.getAttribute("data-api");
    this.kind = root.getAttribute("data-kind");
    this.chunkBytes = parseInt(root.getAttribute("data-chunk-bytes"), 10);
    this.maxRetries = 8;
  }

  Uploader.prototype.say = function (text, done, total) {
    this.status.textContent = text;
    this.progress.hidden = false;
    this.progress.max = total || 1;
    this.progress.value = done || 0;
  };

  Uploader.prototype.request = function (method, url, body, headers) {
    var init = { method: method, credentials: "same-origin", headers: Object.assign({
      "X-CSRFToken": csrfToken(this.form), "Accept": "application/json" }, headers || {}) };
    if (body !== undefined) { init.body = body; }
    return fetch(url, init);
  };

  Uploader.prototype.fileDigest = function (file) {
    var self = this, hasher = new Sha256(), start = 0;
    function next() {
      if (start >= file.size) { return Promise.resolve(hasher.hex()); }
      var end = Math.min(file.size, start + self.chunkBytes);
      return readSlice(file, start, end).then(function (bytes) {
        hasher.update(bytes);
        start = end;
        self.say("Checking the file… " + Math.round(100 * start / file.size) + " %", start, file.size);
        return next();
      });
    }
    return next();
  };

  Uploader.prototype.serverOffset = function (url) {
    return this.request("GET", url).then(function (response) {
      if (!response.ok) { throw new Error("the upload session could not be read (" + response.status + ")"); }
      return response.json();
    }).then(function (session) { return session.offset; });
  };

  Uploader.prototype.sendChunks = function (file, session) {
    var self = this, offset = session.offset, failures = 0;
    function next() {
      if (offset >= file.size) { return Promise.resolve(); }
      var end = Math.min(file.size, offset + self.chunkBytes);
      return readSlice(file, offset, end).then(function (bytes) {
        var digest = new Sha256().update(bytes).hex();
        return self.request("PUT", session.upload_url + "?offset=" + offset, bytes, {
          "Content-Type": "application/octet-stream", "Upload-Chunk-SHA256": digest
        });
      }).then(function (response) {
        if (response.ok) { return response.json().then(function (body) { offset = body.offset; failures = 0; }); }
        if (response.status === 400 || response.status === 409) { throw new Error("chunk refused"); }
        return response.json().catch(function () { return {}; }).then(function (body) {
          var error = new Error(body.detail || ("the server answered " + response.status));
          error.fatal = true;
          throw error;
        });
      }).catch(function (error) {
        if (error.fatal || failures >= self.maxRetries) { throw error; }
        failures += 1;
        self.say("Connection lost; resuming (attempt " + failures + ")…", offset, file.size);
        return sleep(Math.min(8000, 250 * Math.pow(2, failures))).then(function () {
          return self.serverOffset(session.upload_url);
        }).then(function (serverOffset) { offset = serverOffset; });
      }).then(function () {
        self.say("Uploading… " + Math.round(100 * offset / file.size) + " %", offset, file.size);
        return next();
      });
    }
    return next();
  };

  Uploader.prototype.upload = function (file) {
    var self = this;
    return this.fileDigest(file).then(function (sha256) {
      return self.request("POST", self.api, JSON.stringify({ kind: self.kind, size: file.size, sha256: sha256,
        filename: file.name }), { "Content-Type": "application/json" });
    }).then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) { throw Object.assign(new Error(describe(body)), { fatal: true }); }
        return body;
      });
    }).then(function (session) {
      return self.sendChunks(file, session).then(function () {
        self.say("Verifying the upload…", file.size, file.size);
        return self.request("POST", session.finalise_url);
      }).then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) { throw new Error(describe(body)); }
          return body;
        });
      });
    });
  };

  function describe(body) {
    if (body.detail) { return body.detail; }
    var keys = Object.keys(body).filter(function (key) { return key !== "code"; });
    return keys.length ? keys[0] + ": " + [].concat(body[keys[0]]).join(" ") : "the upload was refused";
  }

  Uploader.prototype.start = function (event) {
    var file = this.input && this.input.files[0];
    if (!file || file.size <= this.chunkBytes) { return; } // small files travel in the form itself
    event.preventDefault();
    var self = this, submit = this.form.querySelector("[type=submit]");
    submit.disabled = true;
    this.upload(file).then(function (session) {
      self.say("Uploaded; submitting…", file.size, file.size);
      self.form.querySelector("input[name=upload]").value = session.id;
      self.input.value = "";
      self.form.submit();
    }).catch(function (error) {
      submit.disabled = false;
      self.say("Upload failed: " + error.message, 0, 1);
      self.status.classList.add("text-danger");
    });
  };

  function init() {
    var roots = document.querySelectorAll("[data-chunked-upload]");
    Array.prototype.forEach.call(roots, function (root) {
      var uploader = new Uploader(root);
      uploader.form.addEventListener("submit", function (event) { uploader.start(event); });
    });
  }

  window.SpineBenchSha256 = Sha256; // tests compare it with an independent digest
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
