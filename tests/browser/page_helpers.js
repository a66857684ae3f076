// Read-only probes of a JupyterLab page, installed as window.__edutoolsTest by the browser tests.
// They look at what the learner sees (the DOM) and, for the kernel's state, at the application
// object that `--LabApp.expose_app_in_browser` publishes as window.jupyterapp.
window.__edutoolsTest = (() => {
  // Widget reprs that show up as plain text when the widget front end is missing.
  const WIDGET_AS_TEXT = /^\s*(VBox|HBox|Box|GridBox|Tab|Accordion|\w*Slider|Output|HTML|Label|Button|Dropdown|Image|Play|Checkbox|ExperimentPanel)\(/;
  const BUSY_STATUS = /running|training|computing|drawing|working/i;

  function notebook(path) {
    const app = window.jupyterapp;
    if (!app) return null;
    for (const widget of app.shell.widgets('main')) {
      if (widget.context && widget.context.path === path && widget.content) return widget;
    }
    return null;
  }

  function kernelState(path) {
    const panel = notebook(path);
    if (!panel) return { found: false };
    const session = panel.sessionContext && panel.sessionContext.session;
    const kernel = session && session.kernel;
    const cells = panel.content.widgets;
    const code = cells.filter((cell) => cell.model.type === 'code');
    const errors = [];
    code.forEach((cell, index) => {
      const outputs = cell.model.outputs ? cell.model.outputs.toJSON() : [];
      for (const output of outputs) {
        if (output.output_type === 'error') {
          errors.push(`code cell ${index}: ${output.ename}: ${output.evalue}`);
        }
      }
    });
    return {
      found: true,
      status: kernel ? kernel.status : 'no kernel',
      counts: code.map((cell) => cell.model.executionCount),
      codeIndices: code.map((cell) => cells.indexOf(cell)),
      pending: code.filter((cell) => cell.node.querySelector('.jp-InputPrompt')
        && cell.node.querySelector('.jp-InputPrompt').textContent.includes('*')).length,
      dirty: panel.context.model.dirty,
      errors,
    };
  }

  // Everything in the notebook that a learner would read as an error or a broken widget.
  function problems(path) {
    const panel = notebook(path);
    const root = panel ? panel.content.node : document;
    const found = [];
    for (const node of root.querySelectorAll('.jp-OutputArea-output')) {
      const text = (node.innerText || '').trim();
      const mime = node.getAttribute('data-mime-type') || '';
      if (mime === 'application/vnd.jupyter.stderr' && /Traceback|^\w*Error\b/m.test(text)) {
        found.push(`error output: ${text.slice(0, 300)}`);
      } else if (mime === 'application/vnd.jupyter.stderr' && !text) {
        // JupyterLab tints stderr red: whitespace left by a cleared progress bar is an empty
        // error box to the learner.
        found.push('empty stderr output (an empty red box)');
      } else if (mime === 'text/plain' && WIDGET_AS_TEXT.test(text)) {
        found.push(`widget shown as text: ${text.slice(0, 120)}`);
      }
    }
    const all = root.innerText || '';
    for (const phrase of ['Error displaying widget', 'Error rendering output']) {
      if (all.includes(phrase)) found.push(`page shows "${phrase}"`);
    }
    // JupyterLab's news toast sits over the lesson until answered; the course's settings
    // (edutools.face.lab_settings) answer it.
    if ((document.body.innerText || '').includes('notified about official Jupyter news')) {
      found.push('page shows the "get notified about official Jupyter news?" prompt');
    }
    return found;
  }

  function loadingWidgets(path) {
    const panel = notebook(path);
    const root = panel ? panel.content.node : document;
    return (root.innerText || '').split('Loading widget...').length - 1;
  }

  function cellIndex(path, marker) {
    const panel = notebook(path);
    const cell = cellFor(path, marker);
    return cell ? panel.content.widgets.indexOf(cell) : -1;
  }

  function cellFor(path, marker) {
    const panel = notebook(path);
    if (!panel) return null;
    return panel.content.widgets.find(
      (cell) => cell.model.type === 'code' && cell.model.sharedModel.getSource().includes(marker));
  }

  // The slider panel displayed by the code cell whose source contains `marker`:
  // `.edutools-panel` if the panel has that class, else the box around its first slider.
  function panelElement(path, marker) {
    const cell = cellFor(path, marker);
    if (!cell) return null;
    const marked = cell.node.querySelector('.edutools-panel');
    if (marked) return marked;
    const slider = cell.node.querySelector('.widget-slider');
    return slider ? slider.closest('.widget-vbox') : null;
  }

  function statusElement(panel) {
    const marked = panel.querySelector('.edutools-panel-status');
    if (marked) return marked;
    // Today's panel: an HTML widget directly inside the panel's box.
    return Array.from(panel.children).find((child) => child.classList.contains('widget-html'));
  }

  function sliderElement(panel, label) {
    for (const slider of panel.querySelectorAll('.widget-slider')) {
      const description = slider.querySelector('.widget-label');
      if (description && description.textContent.trim() === label) return slider;
    }
    return null;
  }

  // FNV-1a over a string or bytes: cheap fingerprints of images, compared for equality only.
  function fnv(values) {
    let hash = 0x811c9dc5;
    for (let i = 0; i < values.length; i++) {
      hash ^= typeof values === 'string' ? values.charCodeAt(i) : values[i];
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
    return hash.toString(16).padStart(8, '0') + ':' + values.length;
  }

  async function imageFingerprint(img) {
    const src = img.getAttribute('src') || '';
    if (src.startsWith('blob:')) {
      // Blob URLs change on every redraw even for the same picture: hash the bytes instead.
      try {
        const bytes = new Uint8Array(await (await fetch(src)).arrayBuffer());
        return fnv(bytes);
      } catch (error) {
        return 'unreadable:' + src;
      }
    }
    return fnv(src);
  }

  async function panelState(path, marker) {
    const panel = panelElement(path, marker);
    if (!panel) return { found: false };
    const status = statusElement(panel);
    const images = Array.from(panel.querySelectorAll('img')).filter((img) => img.getAttribute('src'));
    const fingerprints = [];
    for (const img of images) fingerprints.push(await imageFingerprint(img));
    const statusText = status ? (status.innerText || '').trim() : '';
    const readouts = {};
    for (const slider of panel.querySelectorAll('.widget-slider')) {
      const label = slider.querySelector('.widget-label');
      const readout = slider.querySelector('.widget-readout');
      if (label) readouts[label.textContent.trim()] = readout ? readout.textContent.trim() : null;
    }
    return {
      found: true,
      marked: panel.classList.contains('edutools-panel'),
      status: statusText,
      busy: panel.classList.contains('edutools-busy') || !!panel.querySelector('.edutools-busy')
        || BUSY_STATUS.test(statusText),
      figure: fingerprints.length ? fingerprints.join('|') : null,
      numImages: fingerprints.length,
      readouts,
    };
  }

  // Select (DOM id) the focusable handle of a slider so that Playwright can type on it.
  function markSliderHandle(path, marker, label, id) {
    const panel = panelElement(path, marker);
    if (!panel) return 'no panel';
    const slider = sliderElement(panel, label);
    if (!slider) return 'no slider labelled ' + label;
    const handle = slider.querySelector('.noUi-handle, .ui-slider-handle, [role="slider"]');
    if (!handle) return 'no handle';
    document.querySelectorAll('#' + id).forEach((node) => node.removeAttribute('id'));
    handle.id = id;
    panel.scrollIntoView({ block: 'center' });
    return 'ok';
  }

  function markPanel(path, marker, id) {
    const panel = panelElement(path, marker);
    if (!panel) return false;
    document.querySelectorAll('#' + id).forEach((node) => node.removeAttribute('id'));
    panel.id = id;
    return true;
  }

  return {
    kernelState, problems, loadingWidgets, panelState, markSliderHandle, markPanel, cellIndex,
  };
})();
