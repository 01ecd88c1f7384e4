/*
 * The reading workspace's image viewer: the real 16-bit pixels, windowed in the browser.
 *
 * The pixels come from /api/images/<id>/pixels/ (uint16 little-endian, gzip decoded by the
 * browser); modality value = uint16 * scale + offset (see trial/dicom/viewer_pixels.py).
 * An image with a reduced-resolution preview (meta.preview: /api/images/<id>/preview/, the
 * same values averaged over factor x factor blocks, same scale and offset; the page preloads
 * it) has the preview fetched first and the full data once it is in (or after a second at
 * most): the preview is drawn as soon as it arrives, with the current
 * window, inversion, zoom and pan, and a "loading full resolution" hint, then replaced by the
 * full data, the view kept. Everything works on the preview (keys, drag, presets); the view is
 * in full-image pixels. A preview that fails or never comes changes nothing for the full data.
 * Window/level goes through a lookup table (one entry per stored level) into an RGBA
 * ImageData of the full image, kept in an offscreen canvas and drawn scaled onto the visible
 * one. While a window drag is in progress and a full re-window is slow (large images), each
 * frame windows only what is on screen, sampled from a 2x-averaged pyramid at about screen
 * resolution; the full-resolution image is redone when the mouse is released.
 *
 * Contract with the page (section#viewer): data-displayed="1" and a bubbling
 * "viewer:displayed" event (detail.image = id) the first time full-resolution pixels are on
 * screen, once per page load (the reading clock starts there: editor.js); before it,
 * data-first-pixels="reduced|full" and a bubbling "viewer:first-pixels" event (detail.image,
 * detail.resolution) the first time any pixels are on screen, once per page load;
 * data-resolution="reduced|full" for what is on screen now (absent while nothing is);
 * data-image, data-wl="centre,width", data-invert, data-zoom, data-preview ("1" while a drag
 * preview is on screen: not the reduced-resolution image) and data-render-ms after each
 * change. Keys are ignored in text fields and with Ctrl/Alt/Meta;
 * n, ? and Enter are left to the page. Touch (pointer events; the canvas is touch-action:
 * none): one finger = window/level (pan in pan mode), pinch = zoom, two fingers = pan,
 * double tap = fit. Plain ES2017, no libraries.
 */
(function () {
  "use strict";

  var section = document.getElementById("viewer");
  if (!section) return;
  var metaNode = document.getElementById(section.getAttribute("data-meta") || "viewer-images");
  var images = metaNode ? JSON.parse(metaNode.textContent) : [];
  var stage = section.querySelector(".viewer-stage");
  var canvas = section.querySelector(".viewer-canvas");
  var ctx = canvas.getContext("2d");
  var overlay = section.querySelector(".viewer-overlay");
  var loading = section.querySelector(".viewer-loading");
  var progress = loading.querySelector("progress");
  var hint = section.querySelector(".viewer-hint"); // "loading full resolution" over a preview
  var hintProgress = hint && hint.querySelector("progress");
  var errorBox = section.querySelector(".viewer-error");
  var presetBar = section.querySelector(".viewer-presets");

  var BACKGROUND = 0xff000000; // opaque black, RGBA read as a little-endian uint32
  // A full re-window slower than this (ms): while dragging, window only what is on screen.
  // Measured in Chromium on this project's 2-core machine, 2500 x 3000: 7-12 ms of script
  // plus 8-10 ms to raster, so the full-resolution path is the usual one.
  var SLOW_MS = 25;
  var PREVIEW_HEAD_START_MS = 1000; // the full data waits at most this long for the preview
  var ZOOM_STEP = 1.25;
  var LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

  var state = {
    index: 0, meta: null, pixels: null, loadToken: 0,
    // What state.pixels holds: the full data (factor 1) or the preview (factor > 1), columns
    // x rows of it; the view (zoom, x, y) is always in full-image pixels.
    factor: 1, columns: 0, rows: 0, reduced: false, firstPixels: false,
    center: 0, width: 1, invert: false,
    zoom: 1, x: 0, y: 0, fitted: true, panMode: false,
    full: null, fullData: null, fullWords: null, lut: null, pyramid: null,
    needWindow: false, needDraw: false, preview: false, frame: 0,
    fullMs: 0, drag: null, displayed: false
  };
  var cache = new Map(); // image id -> Uint16Array of the full data
  var loads = new Map(); // url -> {promise, fraction} while it is being fetched

  // --- loading ------------------------------------------------------------------------

  function fetchPixels(url, rows, columns, onProgress) {
    // The stream gives decoded bytes while Content-Length is the gzip size, so progress is
    // measured against the known decoded size, rows x columns x 2. The request is the one a
    // <link rel="preload" as="fetch" crossorigin> makes (same-origin credentials, no extra
    // header: the API sends the file whatever Accept says), so a preloaded preview is used.
    var expected = rows * columns * 2;
    return fetch(url, { credentials: "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error("the server answered " + response.status);
      if (!response.body || !response.body.getReader) return response.arrayBuffer();
      var reader = response.body.getReader();
      var bytes = new Uint8Array(expected);
      var got = 0;
      function pump() {
        return reader.read().then(function (chunk) {
          if (chunk.done) return bytes.buffer;
          if (got + chunk.value.length > expected) throw new Error("more data than expected");
          bytes.set(chunk.value, got);
          got += chunk.value.length;
          onProgress(got / expected);
          return pump();
        });
      }
      return pump().then(function (buffer) {
        if (got !== expected) throw new Error("the image data was incomplete");
        return buffer;
      });
    }).then(function (buffer) {
      if (buffer.byteLength !== expected) throw new Error("the image data has the wrong size");
      if (LITTLE_ENDIAN) return new Uint16Array(buffer);
      var view = new DataView(buffer);
      var out = new Uint16Array(expected / 2);
      for (var i = 0; i < out.length; i++) out[i] = view.getUint16(2 * i, true);
      return out;
    });
  }

  // One fetch per URL at a time: coming back to an image still loading waits for the same one.
  function load(url, rows, columns) {
    var entry = loads.get(url);
    if (entry) return entry;
    entry = { fraction: 0 };
    entry.promise = fetchPixels(url, rows, columns, function (fraction) {
      entry.fraction = fraction;
      if (state.meta && state.meta.pixels_url === url) showProgress(fraction);
    });
    entry.promise.then(function () { loads.delete(url); }, function () { loads.delete(url); });
    loads.set(url, entry);
    return entry;
  }

  function showProgress(fraction) {
    var percent = Math.round(fraction * 100);
    progress.value = percent;
    if (hintProgress) hintProgress.value = percent;
  }

  function clearCanvas() {
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  }

  function showImage(index) {
    var meta = images[index];
    if (!meta) return;
    var token = ++state.loadToken;
    state.index = index;
    state.meta = meta;
    state.pixels = null;
    state.reduced = false;
    state.full = state.pyramid = null;
    state.center = meta.window.center;
    state.width = meta.window.width;
    state.invert = !!meta.invert;
    buildPresets(meta);
    markImageButtons();
    errorBox.hidden = true;
    if (hint) hint.hidden = true;
    section.removeAttribute("data-resolution");
    clearCanvas();
    var cached = cache.get(meta.id);
    if (cached) {
      loading.hidden = true;
      use(meta, cached, null);
      return;
    }
    var failed = false, started = false;
    loading.hidden = false;
    showProgress(0);
    var preview = meta.preview;
    if (preview && !loads.get(meta.pixels_url)) {
      // The full data is asked for once the preview is in (or failed, or after
      // PREVIEW_HEAD_START_MS): both at once would share the line, and the preview, a
      // twenty-fifth of the bytes, would come no sooner than a good part of the full data.
      var first = load(preview.url, preview.rows, preview.columns).promise;
      first.then(function (pixels) {
        // Too late if the image changed or its full data is already on screen.
        if (token !== state.loadToken || failed || (state.pixels && !state.reduced)) return;
        loading.hidden = true;
        if (hint) hint.hidden = false;
        use(meta, pixels, preview);
      }, function () { /* no preview: the full data comes as it would without one */ });
      first.then(fetchFull, fetchFull);
      setTimeout(fetchFull, PREVIEW_HEAD_START_MS);
    } else {
      fetchFull();
    }

    function fetchFull() {
      if (started || token !== state.loadToken) return;
      started = true;
      var full = load(meta.pixels_url, meta.rows, meta.columns);
      showProgress(full.fraction);
      full.promise.then(function (pixels) {
        cache.set(meta.id, pixels);
        if (token !== state.loadToken) return;
        loading.hidden = true;
        if (hint) hint.hidden = true;
        use(meta, pixels, null);
      }).catch(function (error) {
        if (token !== state.loadToken) return;
        failed = true;
        loading.hidden = true;
        if (hint) hint.hidden = true;
        // A preview is not the image: nothing stays on screen to be read from.
        state.pixels = null;
        state.reduced = false;
        section.removeAttribute("data-resolution");
        clearCanvas();
        errorBox.textContent = "The image could not be loaded (" + error.message + "). ";
        var retry = document.createElement("button");
        retry.type = "button";
        retry.textContent = "Try again";
        retry.addEventListener("click", function () { showImage(state.index); });
        errorBox.appendChild(retry);
        errorBox.hidden = false;
        section.setAttribute("data-error", error.message);
      });
    }
  }

  // Put pixels on screen: the full data (preview null) or the preview. The first of them
  // fits the image; the full data replacing a preview keeps the view, window and inversion.
  function use(meta, pixels, preview) {
    var first = !state.pixels;
    state.pixels = pixels;
    state.reduced = !!preview;
    state.factor = preview ? preview.factor : 1;
    state.columns = preview ? preview.columns : meta.columns;
    state.rows = preview ? preview.rows : meta.rows;
    state.pyramid = null;
    state.fullMs = 0; // measured again on these pixels
    prepareFull(meta);
    if (first) fit();
    schedule(true);
  }

  function prepareFull(meta) {
    // An offscreen canvas of state.pixels at their own size (the full image or the preview).
    var full = document.createElement("canvas");
    full.width = state.columns;
    full.height = state.rows;
    var fullCtx = full.getContext("2d");
    state.full = full;
    state.fullCtx = fullCtx;
    state.fullData = fullCtx.createImageData(state.columns, state.rows);
    state.fullWords = new Uint32Array(state.fullData.data.buffer);
    state.lut = new Uint32Array(meta.levels);
  }

  // --- window/level -------------------------------------------------------------------

  function buildLut() {
    // DICOM PS3.3 C.11.2.1.2.1 LINEAR window, on modality values of every stored level.
    var meta = state.meta, lut = state.lut, scale = meta.scale, offset = meta.offset;
    var c = state.center - 0.5, w = Math.max(state.width - 1, 1e-9);
    var binary = state.width <= 1;
    for (var i = 0; i < lut.length; i++) {
      var v = i * scale + offset, g;
      if (binary) g = v > c ? 255 : 0;
      else {
        var y = (v - c) / w + 0.5;
        g = y <= 0 ? 0 : y >= 1 ? 255 : Math.round(y * 255);
      }
      if (state.invert) g = 255 - g;
      lut[i] = (BACKGROUND | (g << 16) | (g << 8) | g) >>> 0;
    }
  }

  function windowFull() {
    var src = state.pixels, out = state.fullWords, lut = state.lut, n = src.length;
    for (var i = 0; i < n; i++) out[i] = lut[src[i]];
    state.fullCtx.putImageData(state.fullData, 0, 0);
  }

  function buildPyramid() {
    // Level k halves level k-1 (2x2 mean), down to at most 1024 pixels a side.
    var levels = [{ w: state.columns, h: state.rows, data: state.pixels }];
    var last = levels[0];
    while (Math.max(last.w, last.h) > 1024) {
      var w = last.w >> 1, h = last.h >> 1, src = last.data, sw = last.w;
      var data = new Uint16Array(w * h);
      for (var y = 0; y < h; y++) {
        var a = 2 * y * sw, b = a + sw, o = y * w;
        for (var x = 0; x < w; x++) {
          var k = 2 * x;
          data[o + x] = (src[a + k] + src[a + k + 1] + src[b + k] + src[b + k + 1] + 2) >> 2;
        }
      }
      last = { w: w, h: h, data: data };
      levels.push(last);
    }
    state.pyramid = levels;
  }

  function drawPreview() {
    // What is on screen only, nearest sample from the pyramid level closest to screen size.
    if (!state.pyramid) buildPyramid();
    var cw = canvas.width, ch = canvas.height, meta = state.meta;
    var level = Math.max(0, Math.min(state.pyramid.length - 1,
      Math.floor(Math.log2(1 / (state.zoom * state.factor)))));
    // f: full-image pixels per pixel of this level (a preview's own pixels are factor wide).
    var src = state.pyramid[level], f = state.factor * (1 << level), lut = state.lut;
    if (!state.view || state.view.width !== cw || state.view.height !== ch) {
      state.view = ctx.createImageData(cw, ch);
      state.viewWords = new Uint32Array(state.view.data.buffer);
    }
    var out = state.viewWords, cols = new Int32Array(cw);
    for (var x = 0; x < cw; x++) {
      var fx = (x + 0.5 - state.x) / state.zoom; // in full-image pixels
      cols[x] = fx >= 0 && fx < meta.columns ? Math.min(Math.floor(fx / f), src.w - 1) : -1;
    }
    for (var y = 0; y < ch; y++) {
      var fy = (y + 0.5 - state.y) / state.zoom, base = y * cw;
      if (fy < 0 || fy >= meta.rows) { out.fill(BACKGROUND, base, base + cw); continue; }
      var iy = Math.min(Math.floor(fy / f), src.h - 1);
      var row = iy * src.w, data = src.data;
      for (var x2 = 0; x2 < cw; x2++) {
        var c = cols[x2];
        out[base + x2] = c < 0 ? BACKGROUND : lut[data[row + c]];
      }
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.putImageData(state.view, 0, 0);
  }

  function draw() {
    var f = state.factor, scale = state.zoom * f;
    clearCanvas();
    ctx.imageSmoothingEnabled = scale < 4; // zoomed far in: show the pixels as they are
    ctx.imageSmoothingQuality = "high";
    ctx.setTransform(scale, 0, 0, scale, state.x, state.y);
    if (f === 1) ctx.drawImage(state.full, 0, 0);
    else {
      // The preview's last row and column may cover fewer than f full pixels: draw exactly
      // the image's extent (columns / f preview pixels wide), at exactly f full pixels each.
      var w = state.meta.columns / f, h = state.meta.rows / f;
      ctx.drawImage(state.full, 0, 0, w, h, 0, 0, w, h);
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
  }

  function schedule(rewindow) {
    if (rewindow) state.needWindow = true;
    state.needDraw = true;
    if (!state.frame) state.frame = requestAnimationFrame(frame);
  }

  function frame() {
    state.frame = 0;
    if (!state.pixels) return;
    var started = performance.now();
    var dragging = state.drag && state.drag.kind === "window";
    if (state.needWindow) buildLut();
    var slow = section.hasAttribute("data-preview-above-ms")  // to test the preview path
      ? Number(section.getAttribute("data-preview-above-ms")) : SLOW_MS;
    if (state.needWindow && dragging && state.fullMs > slow) {
      drawPreview();
      state.preview = true; // the full image is redone on release
      state.needWindow = state.needDraw = false;
      section.setAttribute("data-preview-ms", (performance.now() - started).toFixed(1));
      section.setAttribute("data-preview", "1");
    } else {
      var windowed = state.needWindow;
      if (windowed) windowFull();
      draw();
      state.needWindow = state.needDraw = state.preview = false;
      var ms = performance.now() - started;
      // A full re-window: lookup table, every pixel, upload, scaled draw.
      if (windowed) state.fullMs = ms;
      section.setAttribute(windowed ? "data-render-ms" : "data-draw-ms", ms.toFixed(1));
      section.setAttribute("data-preview", "0");
    }
    publish();
    announce();
  }

  function announce() {
    var resolution = state.reduced ? "reduced" : "full";
    section.setAttribute("data-resolution", resolution);
    if (!state.firstPixels) {
      state.firstPixels = true;
      section.setAttribute("data-first-pixels", resolution);
      section.dispatchEvent(new CustomEvent("viewer:first-pixels", {
        bubbles: true, detail: { image: state.meta.id, resolution: resolution }
      }));
    }
    if (!state.reduced && !state.displayed) {
      state.displayed = true;
      section.setAttribute("data-displayed", "1");
      section.dispatchEvent(new CustomEvent("viewer:displayed", {
        bubbles: true, detail: { image: state.meta.id }
      }));
    }
  }

  function setWindow(center, width) {
    var minimum = Math.max(Math.abs(state.meta.scale), 1e-6);
    state.center = center;
    state.width = Math.max(width, minimum);
    schedule(true);
  }

  // --- view ---------------------------------------------------------------------------

  function resizeCanvas() {
    var ratio = window.devicePixelRatio || 1;
    var w = Math.max(1, Math.round(stage.clientWidth * ratio));
    var h = Math.max(1, Math.round(stage.clientHeight * ratio));
    if (w === canvas.width && h === canvas.height) return false;
    var cx = (canvas.width / 2 - state.x) / state.zoom, cy = (canvas.height / 2 - state.y) / state.zoom;
    canvas.width = w;
    canvas.height = h;
    state.view = null;
    if (state.fitted) fit();
    else { state.x = w / 2 - cx * state.zoom; state.y = h / 2 - cy * state.zoom; }
    return true;
  }

  function fitZoom() {
    var meta = state.meta;
    return Math.min(canvas.width / meta.columns, canvas.height / meta.rows);
  }

  function fit() {
    if (!state.meta) return;
    var meta = state.meta;
    state.zoom = fitZoom();
    state.x = (canvas.width - meta.columns * state.zoom) / 2;
    state.y = (canvas.height - meta.rows * state.zoom) / 2;
    state.fitted = true;
    schedule(false);
  }

  function zoomAt(factor, px, py) {
    if (!state.meta) return;
    var fz = fitZoom();
    var zoom = Math.min(Math.max(state.zoom * factor, fz / 4), Math.max(32, fz));
    var f = zoom / state.zoom;
    if (px === undefined) { px = canvas.width / 2; py = canvas.height / 2; }
    state.x = px - (px - state.x) * f;
    state.y = py - (py - state.y) * f;
    state.zoom = zoom;
    state.fitted = false;
    schedule(false);
  }

  function panBy(dx, dy) {
    state.x += dx;
    state.y += dy;
    state.fitted = false;
    schedule(false);
  }

  function reset() {
    setWindow(state.meta.window.center, state.meta.window.width);
    state.invert = !!state.meta.invert;
    fit();
    schedule(true);
  }

  function toggleInvert() {
    state.invert = !state.invert;
    schedule(true);
  }

  function setPanMode(on) {
    state.panMode = on;
    section.classList.toggle("viewer-pan-mode", on);
    var button = section.querySelector('[data-action="pan"]');
    if (button) button.setAttribute("aria-pressed", on ? "true" : "false");
  }

  function applyPreset(i) {
    var preset = state.meta && state.meta.presets[i];
    if (preset) setWindow(preset.center, preset.width);
  }

  function number(x) {
    return String(Math.round(x * 100) / 100);
  }

  // What a radiologist reads on the overlay: whole numbers for wide windows (CT-like or raw
  // 16-bit values), one or two decimals only for small rescaled ranges.
  function shown(x) {
    var size = Math.abs(x);
    var digits = size >= 100 ? 0 : size >= 10 ? 1 : 2;
    return x.toLocaleString("en-US", {maximumFractionDigits: digits, useGrouping: false});
  }

  function publish() {
    var wl = number(state.center) + "," + number(state.width);
    section.setAttribute("data-image", String(state.meta.id));
    section.setAttribute("data-wl", wl);
    section.setAttribute("data-invert", state.invert ? "1" : "0");
    section.setAttribute("data-zoom", state.zoom.toFixed(4));
    var ratio = window.devicePixelRatio || 1;
    overlay.textContent = "W " + shown(state.width) + "  L " + shown(state.center) +
      "  ·  " + Math.round(state.zoom / ratio * 100) + "%" + (state.invert ? "  ·  inverted" : "");
    var button = section.querySelector('[data-action="invert"]');
    if (button) button.setAttribute("aria-pressed", state.invert ? "true" : "false");
  }

  function buildPresets(meta) {
    if (!presetBar) return;
    presetBar.textContent = "";
    meta.presets.forEach(function (preset, i) {
      var button = document.createElement("button");
      button.type = "button";
      button.setAttribute("data-preset", String(i));
      button.title = preset.title + " (" + preset.key + ")";
      button.textContent = preset.name + " ";
      var key = document.createElement("kbd");
      key.textContent = preset.key;
      button.appendChild(key);
      presetBar.appendChild(button);
    });
  }

  function markImageButtons() {
    section.querySelectorAll("[data-image-index]").forEach(function (button) {
      var on = Number(button.getAttribute("data-image-index")) === state.index;
      button.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }

  // --- input --------------------------------------------------------------------------

  function canvasPoint(event) {
    var rect = canvas.getBoundingClientRect();
    return { x: (event.clientX - rect.left) * canvas.width / rect.width,
             y: (event.clientY - rect.top) * canvas.height / rect.height };
  }

  canvas.addEventListener("pointerdown", function (event) {
    if (event.pointerType === "touch") { touchDown(event); return; }
    if (state.drag && state.drag.touch) return; // fingers on the image: the mouse waits
    if (!state.pixels || (event.button !== 0 && event.button !== 1)) return;
    var pan = event.button === 1 || event.shiftKey || state.panMode;
    state.drag = { kind: pan ? "pan" : "window", x: event.clientX, y: event.clientY,
                   id: event.pointerId };
    canvas.setPointerCapture(event.pointerId);
    canvas.focus({ preventScroll: true });
    event.preventDefault();
  });

  // A one-pointer drag (mouse, pen or one finger) moved to event's position: pan or window.
  function dragTo(drag, event) {
    var dx = event.clientX - drag.x, dy = event.clientY - drag.y;
    drag.x = event.clientX;
    drag.y = event.clientY;
    if (drag.kind === "pan") {
      var ratio = canvas.width / canvas.getBoundingClientRect().width;
      panBy(dx * ratio, dy * ratio);
    } else {
      // Right = wider, down = higher level (darker); about the full range per 800 pixels.
      var step = Math.max(state.meta.max - state.meta.min, Math.abs(state.meta.scale)) / 800;
      setWindow(state.center + dy * step, state.width + dx * step);
    }
  }

  canvas.addEventListener("pointermove", function (event) {
    if (event.pointerType === "touch") { touchMove(event); return; }
    var drag = state.drag;
    if (!drag || drag.touch || event.pointerId !== drag.id) return;
    dragTo(drag, event);
  });

  function endDrag(event) {
    if (event.pointerType === "touch") { touchUp(event); return; }
    if (!state.drag || event.pointerId !== state.drag.id) return;
    state.drag = null;
    if (state.preview) schedule(true);
  }
  canvas.addEventListener("pointerup", endDrag);
  canvas.addEventListener("pointercancel", endDrag);

  // --- touch --------------------------------------------------------------------------
  // One finger drags as the mouse's left button does: window/level, or pan in pan mode (the
  // Pan button). Two fingers: pinch = zoom about the point between them, both moving = pan.
  // A double tap fits the image. Once a second finger has touched, the gesture stays a pinch
  // until every finger is lifted (lifting one does not start a window change), and a finger
  // moves the window only once it has moved TAP_SLOP pixels (a tap changes nothing).
  var TAP_SLOP = 8;         // CSS pixels
  var DOUBLE_TAP_MS = 350;  // between the two taps' releases
  var TAP_MS = 400;         // longer is a press, not a tap
  var touches = new Map();  // pointerId -> {x, y, t} (client coordinates; t = down time)
  var pinch = null;         // the fingers' centre at the last move; distance, zoom at the start
  var lastTap = null;       // {t, x, y} of the last one-finger tap

  function twoFingers() {
    var points = Array.from(touches.values()).slice(0, 2);
    var a = points[0], b = points[1];
    return { distance: Math.hypot(a.x - b.x, a.y - b.y), x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
  }

  function touchDown(event) {
    if (!state.pixels || touches.size >= 2) return; // a third finger is ignored
    if (state.drag && !state.drag.touch) return;   // a mouse drag is going on
    event.preventDefault();
    touches.set(event.pointerId, { x: event.clientX, y: event.clientY, t: event.timeStamp });
    try { canvas.setPointerCapture(event.pointerId); } catch (e) { /* already released */ }
    if (touches.size === 1) {
      canvas.focus({ preventScroll: true });
      state.drag = { kind: state.panMode ? "pan" : "window", x: event.clientX, y: event.clientY,
                     id: event.pointerId, touch: true, moved: false };
    } else {
      state.drag = { kind: "pinch", touch: true };
      if (state.preview) schedule(true); // the window drag ends: full resolution again
      pinch = twoFingers();
      pinch.start = pinch.distance;
      pinch.zoom = state.zoom;
      lastTap = null;
    }
  }

  function touchMove(event) {
    var finger = touches.get(event.pointerId), drag = state.drag;
    if (!finger || !drag) return;
    finger.x = event.clientX;
    finger.y = event.clientY;
    if (drag.kind === "pinch") {
      if (touches.size < 2) return;
      // The centre's movement pans; the zoom follows the fingers' spread since they touched
      // (so fingers back where they started give the zoom back, limits or not).
      var now = twoFingers(), rect = canvas.getBoundingClientRect();
      var ratio = canvas.width / rect.width;
      panBy((now.x - pinch.x) * ratio, (now.y - pinch.y) * ratio);
      if (pinch.start > 0 && now.distance > 0) {
        var wanted = pinch.zoom * now.distance / pinch.start;
        zoomAt(wanted / state.zoom, (now.x - rect.left) * ratio, (now.y - rect.top) * ratio);
      }
      pinch.x = now.x;
      pinch.y = now.y;
    } else if (event.pointerId === drag.id) {
      if (!drag.moved) {
        if (Math.hypot(event.clientX - drag.x, event.clientY - drag.y) < TAP_SLOP) return;
        drag.moved = true; // from here on, the whole movement since the finger went down
      }
      dragTo(drag, event);
    }
  }

  function touchUp(event) {
    var finger = touches.get(event.pointerId), drag = state.drag;
    if (!finger) return;
    touches.delete(event.pointerId);
    if (touches.size) return; // a finger is still down: the gesture goes on (or waits)
    var tapped = event.type === "pointerup" && drag && drag.kind !== "pinch" && !drag.moved &&
      event.timeStamp - finger.t < TAP_MS;
    state.drag = null;
    pinch = null;
    if (state.preview) schedule(true);
    if (!tapped) { lastTap = null; return; }
    if (lastTap && event.timeStamp - lastTap.t < DOUBLE_TAP_MS &&
        Math.hypot(event.clientX - lastTap.x, event.clientY - lastTap.y) < 4 * TAP_SLOP) {
      lastTap = null;
      fit();
    } else {
      lastTap = { t: event.timeStamp, x: event.clientX, y: event.clientY };
    }
  }

  canvas.addEventListener("contextmenu", function (event) { event.preventDefault(); });
  canvas.addEventListener("dblclick", function () { fit(); });

  canvas.addEventListener("wheel", function (event) {
    if (!state.pixels) return;
    event.preventDefault();
    var p = canvasPoint(event);
    var delta = event.deltaMode === 1 ? event.deltaY * 16 : event.deltaY;
    zoomAt(Math.exp(-delta * 0.0015), p.x, p.y);
  }, { passive: false });

  section.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button || !section.contains(button)) return;
    if (button.hasAttribute("data-preset")) applyPreset(Number(button.getAttribute("data-preset")));
    else if (button.hasAttribute("data-image-index")) {
      showImage(Number(button.getAttribute("data-image-index")));
    } else if (state.pixels) {
      var action = button.getAttribute("data-action");
      if (action === "invert") toggleInvert();
      else if (action === "zoom-in") zoomAt(ZOOM_STEP);
      else if (action === "zoom-out") zoomAt(1 / ZOOM_STEP);
      else if (action === "fit") fit();
      else if (action === "reset") reset();
      else if (action === "pan") setPanMode(!state.panMode);
    }
  });

  function typing(target) {
    if (!target || target === document.body) return false;
    if (target.isContentEditable) return true;
    var tag = target.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.ctrlKey || event.altKey || event.metaKey) return;
    if (typing(event.target) || !state.pixels) return;
    var pan = Math.round(Math.min(canvas.width, canvas.height) / 10);
    var key = event.key;
    if (key === "i" || key === "I") toggleInvert();
    else if (key === "r" || key === "R") reset();
    else if (key === "f" || key === "F") fit();
    else if (key === "p" || key === "P") setPanMode(!state.panMode);
    else if (key === "+" || key === "=") zoomAt(ZOOM_STEP);
    else if (key === "-" || key === "_") zoomAt(1 / ZOOM_STEP);
    else if (key === "ArrowLeft") panBy(pan, 0);
    else if (key === "ArrowRight") panBy(-pan, 0);
    else if (key === "ArrowUp") panBy(0, pan);
    else if (key === "ArrowDown") panBy(0, -pan);
    else if (key === "[" && images.length > 1) showImage((state.index + images.length - 1) % images.length);
    else if (key === "]" && images.length > 1) showImage((state.index + 1) % images.length);
    else if (/^[1-9]$/.test(key) && Number(key) <= state.meta.presets.length) applyPreset(Number(key) - 1);
    else return;
    event.preventDefault();
  });

  if (window.ResizeObserver) {
    new ResizeObserver(function () { if (resizeCanvas()) schedule(false); }).observe(stage);
  } else {
    window.addEventListener("resize", function () { if (resizeCanvas()) schedule(false); });
  }

  if (!images.length) {
    loading.hidden = true;
    errorBox.textContent = "There is no image for this case.";
    errorBox.hidden = false;
    return;
  }
  resizeCanvas();
  showImage(0);
})();
