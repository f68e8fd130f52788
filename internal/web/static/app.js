'use strict';
// Settings > Data Streaming. Talks only to the public Data Streaming API;
// every rule applied here is enforced by the API too.
(() => {
  const $ = (id) => document.getElementById(id);
  const store = window.sessionStorage;
  const TEST_VALIDITY_MS = 60 * 60 * 1000;
  const GZ_SUFFIX = '.jsonl.gz';
  // What the bucket policy names instead of the operator's AWS account
  // when the operator did not configure it (serve --platform-aws-account-id).
  const PLATFORM_PLACEHOLDER = '<PLATFORM_AWS_ACCOUNT_ID>';
  const REFRESH_MS = 5000;

  let account = store.getItem('j1ds.account');
  let key = store.getItem('j1ds.key');
  let view = null; // the last settings view from the API
  let passed = null; // {bucket, owner, at} of the last passing connection test
  // The bucket policies, as the API serves them for <BUCKET_NAME>: the
  // product's (all of jupiterone/) and the one scoped to this account.
  let policyTemplates = { all: null, account: null };
  let timer = null;
  let testing = false;
  let saving = false;

  const base = () => '/api/v1/accounts/' + encodeURIComponent(account) + '/data-streaming';

  async function api(method, path, body) {
    const init = {
      method,
      headers: { Authorization: 'Bearer ' + key },
      cache: 'no-store',
      credentials: 'omit',
    };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(path, init);
    } catch (e) {
      return { status: 0, data: { error: { code: 'NETWORK', message: 'j1ds could not be reached: check your connection and try again.' } } };
    }
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    return { status: res.status, data };
  }

  function errorOf(r) {
    if (r.data && r.data.error) return r.data.error;
    return { code: 'HTTP_' + r.status, message: 'j1ds answered HTTP ' + r.status + '; try again later.' };
  }

  // ---- validation (the same rules as the API) ----
  function bucketProblem(b) {
    if (b === '') return 'Enter the S3 bucket name.';
    if (b.length < 3 || b.length > 63) return 'A bucket name is 3 to 63 characters long.';
    if (!/^[a-z0-9.-]+$/.test(b)) return 'Use only lowercase letters, digits, dots and hyphens.';
    if (!/^[a-z0-9]/.test(b) || !/[a-z0-9]$/.test(b)) return 'A bucket name begins and ends with a letter or digit.';
    if (b.includes('..')) return 'A bucket name cannot contain two dots in a row.';
    if (/^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(b)) return 'A bucket name cannot look like an IP address.';
    if (/^(xn--|sthree-|amzn-s3-demo-)/.test(b)) return 'A bucket name cannot start with xn--, sthree- or amzn-s3-demo-.';
    if (/(-s3alias|--ol-s3|\.mrap|--x-s3)$/.test(b)) return 'A bucket name cannot end with -s3alias, --ol-s3, .mrap or --x-s3.';
    return '';
  }
  function ownerProblem(a) {
    if (a === '') return 'Enter the 12-digit AWS account id.';
    if (!/^\d+$/.test(a)) return 'An AWS account id has digits only.';
    if (a.length !== 12) return 'An AWS account id has exactly 12 digits (' + a.length + ' so far).';
    return '';
  }

  function form() {
    const f = {
      enabled: $('enabled').checked,
      bucketName: $('bucket').value.trim(),
      awsAccountId: $('awsaccount').value.trim(),
      regionConfirmed: $('region').checked,
    };
    // Sent only when changed: an account that never chose follows the
    // deployment's default.
    if (view && $('gzname').checked !== (view.objectSuffix === GZ_SUFFIX)) {
      f.objectSuffix = $('gzname').checked ? GZ_SUFFIX : '.jsonl';
    }
    return f;
  }

  function showFieldError(input, errEl, msg, show) {
    errEl.textContent = msg;
    errEl.hidden = !(msg && show);
    if (msg && show) input.setAttribute('aria-invalid', 'true');
    else input.removeAttribute('aria-invalid');
  }

  function validate(showAll) {
    const f = form();
    const bp = bucketProblem(f.bucketName);
    const op = ownerProblem(f.awsAccountId);
    showFieldError($('bucket'), $('bucket-error'), bp, showAll || $('bucket').dataset.touched === '1');
    showFieldError($('awsaccount'), $('awsaccount-error'), op, showAll || $('awsaccount').dataset.touched === '1');
    return { f, bp, op };
  }

  // A connection test must have passed for exactly this bucket and owner
  // before streaming is enabled, or retargeted.
  function needsTest(f) {
    if (!f.enabled) return false;
    const s = view;
    return !s.enabled || s.bucketName !== f.bucketName || s.awsAccountId !== f.awsAccountId;
  }
  // The API takes a passing test for an hour: so does the page, also when
  // it stays open longer.
  function testPassedFor(f) {
    return passed !== null && passed.bucket === f.bucketName && passed.owner === f.awsAccountId &&
      Date.now() - passed.at < TEST_VALIDITY_MS;
  }

  function update() {
    const { f, bp, op } = validate(false);
    renderPolicy(bp === '' ? f.bucketName : '');
    $('test').disabled = testing || bp !== '' || op !== '';
    let why = '';
    if (!f.enabled && !view.enabled && f.objectSuffix === undefined) {
      // Streaming is off and stays off: nothing to save. (The first save
      // is an enabling one, and needs a passing test.)
      why = 'Streaming is off: check Enable integration to turn it on.';
    } else if (f.enabled) {
      if (bp !== '' || op !== '') why = 'Fix the bucket name and AWS account id above.';
      else if (!f.regionConfirmed) why = 'Confirm that your bucket is in the required region.';
      else if (needsTest(f) && !testPassedFor(f)) why = 'Run Test Connection for this bucket and AWS account id: it must pass before you can save.';
    }
    $('save').disabled = saving || why !== '';
    $('save-hint').textContent = why;
  }

  // ---- rendering ----
  function policyScope() {
    return $('policy-account').checked ? 'account' : 'all';
  }
  function renderPolicy(bucket) {
    const scope = policyScope();
    const hint = scope === 'account'
      ? 'Grants the role jupiterone-data-streaming write-only access (s3:PutObject), over encrypted transport, to this account\'s folder jupiterone/graph/cdc/accountId=' + account + '/ and to the connection test\'s object jupiterone/.connection-test only: another JupiterOne account that names your bucket cannot write to it. Streaming several JupiterOne accounts into this bucket? Merge the statement of each account into one policy. Do not change the role name.'
      : 'Grants the role jupiterone-data-streaming write-only access (s3:PutObject) to all of jupiterone/* over encrypted transport. Do not change the role name.';
    if ($('policy-hint').textContent !== hint) $('policy-hint').textContent = hint;
    const template = policyTemplates[scope];
    if (template === null) return;
    const text = JSON.stringify(template, null, 2).split('<BUCKET_NAME>').join(bucket || '<BUCKET_NAME>');
    // Unchanged text is left alone: a selection in it (to copy) stays.
    if ($('policy').textContent !== text) $('policy').textContent = text;
    renderPolicyWarning(text.includes(PLATFORM_PLACEHOLDER));
  }

  // renderPolicyWarning flags a policy that names no real AWS account for
  // the service's role: applied, it would grant nothing (AWS rejects it).
  function renderPolicyWarning(broken) {
    const w = $('policy-warning');
    $('copy').disabled = broken;
    $('policy').classList.toggle('broken', broken);
    if (!broken) {
      w.hidden = true;
      return;
    }
    if (w.hidden) {
      w.replaceChildren();
      const strong = document.createElement('strong');
      strong.textContent = 'Do not apply this policy yet: it is incomplete.';
      const p = document.createElement('span');
      const flag = document.createElement('code');
      flag.textContent = 'j1ds serve --platform-aws-account-id';
      p.append('The operator of this service has not set the service\'s AWS account id (', flag,
        '), so the policy names ' + PLATFORM_PLACEHOLDER + ' where that account belongs, and AWS would reject it. ' +
        'Ask your JupiterOne operator to set it, then reload this page. Copy policy is off until then.');
      w.append(strong, p);
      w.hidden = false;
    }
  }

  // problemText is a problem as the customer reads it: what to fix, or,
  // when the service's operator must act, that it is the service's side.
  function problemText(p) {
    const side = p.actionBy === 'operator' ? 'On the service\'s side, not your settings: ' : '';
    return side + p.code + ': ' + p.message;
  }

  // parseTime reads the API's RFC 3339 times, which carry nanoseconds:
  // ECMAScript defines Date.parse for milliseconds only.
  function parseTime(t) {
    return Date.parse(String(t).replace(/(\.\d{3})\d+/, '$1'));
  }
  function fmtTime(t) {
    if (!t) return '—';
    const d = new Date(parseTime(t));
    return d.toLocaleString() + ' (' + d.toISOString().replace('.000Z', 'Z') + ')';
  }
  function fmtDuration(s) {
    if (s < 90) return Math.round(s) + ' s';
    if (s < 5400) return Math.round(s / 60) + ' min';
    return (s / 3600).toFixed(1) + ' h';
  }

  // ---- status: the badge and the 24-hour chart ----
  // The badge's state is the API's status.health (one rule, in Go:
  // exporter.HealthOf); the page only words it.
  const HEALTH_LABELS = { streaming: 'Streaming', delayed: 'Delayed', failing: 'Failing', stopped: 'Stopped' };
  function healthDetail(s, v) {
    switch (s.health) {
      case 'streaming':
        return 'Changes are exported to your bucket every ' + fmtDuration(v.flushIntervalSeconds) + ' or so.';
      case 'delayed':
        return 'Exports work, but the oldest change not yet exported has waited ' + fmtDuration(s.lagSeconds) +
          ', over twice the flush interval of ' + fmtDuration(v.flushIntervalSeconds) + '.';
      case 'failing': {
        const e = s.lastError;
        const local = (t) => new Date(parseTime(t)).toLocaleString();
        let d = 'Exports to your bucket are failing';
        if (e) d += ' since ' + local(e.at) + ' (' + e.code + '): ' + e.message + (/[.!?]$/.test(e.message) ? '' : '.');
        else d += ' (' + s.failures + ' failed attempts).';
        if (s.nextAttempt) d += ' The service retries at ' + local(s.nextAttempt) + '; changes not yet exported are kept and sent once an export succeeds.';
        return d;
      }
      default: {
        const ps = s.periods;
        const last = ps.length > 0 ? ps[ps.length - 1] : null;
        return 'Streaming is not enabled: no change is exported.' + (last && last.endReason ? ' It stopped on ' + fmtTime(last.endAt) + ': ' + last.endReason + '.' : '');
      }
    }
  }
  function renderHealth(v) {
    const s = v.status;
    const h = HEALTH_LABELS[s.health] ? s.health : 'stopped';
    $('health').className = 'health health-' + h;
    $('health').dataset.health = h;
    $('health-label').textContent = HEALTH_LABELS[h];
    $('health-detail').textContent = healthDetail(s, v);
  }

  const SVG = 'http://www.w3.org/2000/svg';
  function svgEl(name, attrs, text) {
    const el = document.createElementNS(SVG, name);
    for (const [k, val] of Object.entries(attrs)) el.setAttribute(k, String(val));
    if (text !== undefined) el.textContent = text;
    return el;
  }
  function clock(t) {
    return new Date(parseTime(t)).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }
  // renderHistory draws GET .../history as inline SVG (the CSP allows no
  // inline style: colours come from app.css classes): per bucket, the
  // objects stored, the events they hold and the failed attempts as bars,
  // and the greatest lag as a line against the delayed threshold.
  function renderHistory(h) {
    const bs = h.buckets;
    const n = bs.length;
    if (n === 0) { $('history').hidden = true; return; }
    $('history').hidden = false; // shown before it is measured
    // As wide as the panel (at least 320 px), so that its text keeps its
    // size on a narrow screen instead of shrinking with the drawing.
    const W = Math.max(320, Math.round($('history-chart').clientWidth || 640));
    const left = 8, right = 56, ph = 40, gap = 24, top = 16;
    const bw = (W - left - right) / n;
    const x = (i) => left + i * bw;
    const H = top + 4 * (ph + gap) + 4;
    const svg = svgEl('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-labelledby': 'history-h', 'aria-describedby': 'history-summary' });
    const sum = (k) => bs.reduce((a, b) => a + b[k], 0);
    const maxLag = Math.max(...bs.map((b) => b.maxLagSeconds));
    const panels = [
      { key: 'objects', title: 'Objects stored', cls: 'bar-objects', fmt: String },
      { key: 'events', title: 'Events exported', cls: 'bar-events', fmt: String },
      { key: 'failures', title: 'Failed attempts', cls: 'bar-failures', fmt: String },
      { key: 'maxLagSeconds', title: 'Greatest lag (dashed: delayed above ' + fmtDuration(h.lagThresholdSeconds) + ')', lag: true, fmt: fmtDuration },
    ];
    panels.forEach((p, k) => {
      const y0 = top + k * (ph + gap);
      const g = svgEl('g', { class: 'panel panel-' + p.key });
      let hi = Math.max(...bs.map((b) => b[p.key]));
      if (p.lag) hi = Math.max(hi, h.lagThresholdSeconds * 1.25);
      hi = hi || 1;
      const y = (val) => y0 + ph - (val / hi) * ph;
      g.append(svgEl('text', { x: left, y: y0 - 4, class: 'panel-title' }, p.title));
      g.append(svgEl('rect', { x: left, y: y0, width: W - left - right, height: ph, class: 'frame' }));
      g.append(svgEl('text', { x: W - right + 4, y: y0 + 9 }, p.fmt(p.lag ? hi : Math.max(...bs.map((b) => b[p.key])))));
      g.append(svgEl('text', { x: W - right + 4, y: y0 + ph }, '0'));
      if (!p.lag) {
        bs.forEach((b, i) => {
          if (b[p.key] > 0) g.append(svgEl('rect', { x: x(i) + 0.5, y: y(b[p.key]), width: Math.max(bw - 1, 1), height: y0 + ph - y(b[p.key]), class: p.cls }));
        });
      } else {
        const ty = y(h.lagThresholdSeconds);
        g.append(svgEl('line', { x1: left, x2: W - right, y1: ty, y2: ty, class: 'threshold' }));
        let d = '';
        let open = false;
        bs.forEach((b, i) => {
          if (b.maxLagSeconds <= 0) { open = false; return; }
          const px = (x(i) + bw / 2).toFixed(1), py = y(b.maxLagSeconds).toFixed(1);
          d += (open ? ' L' : ' M') + px + ' ' + py;
          open = true;
          g.append(svgEl('circle', { cx: px, cy: py, r: 1.8, class: 'lag-dot' }));
        });
        if (d) g.append(svgEl('path', { d: d.trim(), class: 'lag' }));
      }
      svg.append(g);
    });
    // Time labels every six hours, and a hover rectangle per bucket whose
    // title tells its numbers.
    const axisY = top + 4 * (ph + gap) - gap + 14;
    const every = W < 480 ? 48 : 24;
    for (let i = 0; i < n; i += every) svg.append(svgEl('text', { x: x(i), y: axisY }, clock(bs[i].start)));
    svg.append(svgEl('text', { x: W - right + 4, y: axisY }, 'now'));
    bs.forEach((b, i) => {
      const r = svgEl('rect', { x: x(i), y: top, width: bw, height: 4 * (ph + gap) - gap, class: 'hover' });
      r.append(svgEl('title', {}, clock(b.start) + ': ' + b.objects + ' objects, ' + b.events + ' events, ' + b.failures + ' failed attempts, greatest lag ' + fmtDuration(b.maxLagSeconds)));
      svg.append(r);
    });
    $('history-chart').replaceChildren(svg);
    const count = (k, one, many) => { const c = sum(k); return c + ' ' + (c === 1 ? one : many); };
    $('history-summary').textContent = 'Last 24 hours: ' + count('objects', 'object', 'objects') + ', ' + count('events', 'event', 'events') + ', ' +
      count('failures', 'failed attempt', 'failed attempts') + '; greatest lag ' + (maxLag > 0 ? fmtDuration(maxLag) : 'none') + '.';
  }
  async function loadHistory() {
    const r = await api('GET', base() + '/history');
    if (r.status === 200) renderHistory(r.data);
  }

  function renderStatus(v) {
    const s = v.status;
    const rows = [];
    renderHealth(v);
    if (s.enabled) rows.push(['Enabled since', fmtTime(s.enabledSince)]);
    rows.push(['Last export', s.lastExportTime ? fmtTime(s.lastExportTime) : 'none yet']);
    if (s.lastExportKey) rows.push(['Last object', s.lastExportKey]);
    rows.push(['Objects exported', String(s.objectsExported)]);
    rows.push(['Events exported', String(s.eventsExported)]);
    if (s.enabled) {
      rows.push(['Lag', s.pendingSince ? fmtDuration(s.lagSeconds) + ' (oldest change waiting since ' + fmtTime(s.pendingSince) + ')' : 'none: every change is exported']);
    }
    if (s.failures > 0 && s.nextAttempt) rows.push(['Next attempt', fmtTime(s.nextAttempt) + ' (after ' + s.failures + ' failed)']);
    rows.push(['Last error', s.lastError ? problemText(s.lastError) + ' (' + fmtTime(s.lastError.at) + ')' : 'none']);
    rows.push(['Gaps', s.gaps.length === 0 ? 'none' : s.gaps.map((g) => 'LSN ' + g.fromLsn + '–' + g.toLsn + ' lost to log retention (' + fmtTime(g.at) + ')').join('; ')]);
    const dl = $('status');
    dl.replaceChildren();
    for (const [k, val] of rows) {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = val;
      dl.append(dt, dd);
    }
    $('status-refreshed').textContent = 'Refreshed ' + new Date().toLocaleTimeString() + '; refreshes every few seconds.';
  }

  function setResult(el, ok, title, detail) {
    el.className = 'result ' + (ok ? 'ok' : 'bad');
    el.replaceChildren();
    const strong = document.createElement('strong');
    strong.textContent = title;
    el.append(strong);
    if (detail) {
      const p = document.createElement('span');
      p.textContent = detail;
      el.append(p);
    }
  }

  function applyView(v, fillForm) {
    view = v;
    document.querySelectorAll('.region-name').forEach((el) => { el.textContent = v.requiredRegion; });
    if (fillForm) {
      $('enabled').checked = v.enabled;
      $('bucket').value = v.bucketName || '';
      $('awsaccount').value = v.awsAccountId || '';
      $('region').checked = v.regionConfirmed;
      $('gzname').checked = v.objectSuffix === GZ_SUFFIX;
      const t = v.lastConnectionTest;
      if (t && t.ok) passed = { bucket: t.bucketName, owner: t.awsAccountId, at: parseTime(t.at) };
    }
    renderStatus(v);
    update();
  }

  // ---- screens ----
  function show(which) {
    for (const id of ['signin', 'denied', 'app']) $(id).hidden = id !== which;
    $('who').hidden = which === 'signin';
    $('who-account').textContent = account || '';
  }

  function signinError(msg) {
    show('signin');
    $('signin-error').textContent = msg;
    $('signin-error').hidden = !msg;
  }

  // notEntitled tells an administrator of an account without the
  // data-streaming entitlement, whose stream is off, that there is nothing
  // to set. A stream still on without it (its stop did not go through)
  // shows the form instead, so it can be disabled.
  function notEntitled(v) {
    show('denied');
    $('denied-h').textContent = 'Data Streaming is not available for this account';
    const ps = v.status.periods;
    const last = ps.length > 0 ? ps[ps.length - 1] : null;
    $('denied-msg').textContent = 'This account does not have the data-streaming entitlement: ask your JupiterOne operator to add it, then enable streaming here.' +
      (last && last.endReason ? ' Streaming was stopped on ' + fmtTime(last.endAt) + ': ' + last.endReason + '; changes made since are not exported.' : '');
  }

  async function load() {
    const r = await api('GET', base());
    if (r.status === 200 && r.data.entitled === false && !r.data.enabled) {
      notEntitled(r.data);
      return;
    }
    if (r.status === 200) {
      const [all, scoped] = await Promise.all([api('GET', base() + '/bucket-policy'), api('GET', base() + '/bucket-policy?scope=account')]);
      policyTemplates = { all: all.status === 200 ? all.data : null, account: scoped.status === 200 ? scoped.data : null };
      show('app');
      applyView(r.data, true);
      loadHistory();
      clearInterval(timer);
      timer = setInterval(refresh, REFRESH_MS);
      return;
    }
    const e = errorOf(r);
    if (r.status === 403 && (e.code === 'NOT_ENTITLED' || e.code === 'ADMIN_REQUIRED')) {
      show('denied');
      $('denied-h').textContent = e.code === 'NOT_ENTITLED' ? 'Data Streaming is not available for this account' : 'Administrators only';
      $('denied-msg').textContent = e.message;
      return;
    }
    if (r.status === 401) {
      forget();
      signinError('The API key was not accepted: ' + e.message);
      return;
    }
    forget();
    signinError(e.message);
  }

  async function refresh() {
    if (document.hidden) return;
    const r = await api('GET', base());
    if (r.status === 200) {
      view = r.data;
      renderStatus(r.data);
      loadHistory();
      update(); // a test may have aged out, or the settings changed elsewhere
    }
  }

  function forget() {
    store.removeItem('j1ds.account');
    store.removeItem('j1ds.key');
    clearInterval(timer);
  }

  // ---- events ----
  $('signin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const a = $('signin-account').value.trim();
    const k = $('signin-key').value.trim();
    if (!a || !k) {
      signinError('Enter the account id and an API key.');
      return;
    }
    account = a;
    key = k;
    store.setItem('j1ds.account', a);
    store.setItem('j1ds.key', k);
    $('signin-key').value = '';
    load();
  });

  $('signout').addEventListener('click', () => {
    forget();
    account = key = null;
    view = passed = null;
    show('signin');
    $('signin-error').hidden = true;
  });

  for (const id of ['bucket', 'awsaccount']) {
    $(id).addEventListener('input', () => {
      $(id).dataset.touched = '1';
      $('test-result').textContent = '';
      $('save-result').textContent = '';
      update();
    });
  }
  for (const id of ['policy-all', 'policy-account']) {
    $(id).addEventListener('change', () => { $('copy-result').textContent = ''; update(); });
  }
  for (const id of ['enabled', 'region', 'gzname']) {
    $(id).addEventListener('change', () => { $('save-result').textContent = ''; update(); });
  }

  $('test').addEventListener('click', async () => {
    const { f, bp, op } = validate(true);
    if (bp || op) return;
    testing = true;
    update();
    setResult($('test-result'), true, 'Testing the connection…', '');
    const r = await api('POST', base() + '/test-connection', { bucketName: f.bucketName, awsAccountId: f.awsAccountId, regionConfirmed: f.regionConfirmed });
    testing = false;
    if (r.status === 200 && r.data.ok) {
      passed = { bucket: f.bucketName, owner: f.awsAccountId, at: Date.now() };
      setResult($('test-result'), true, 'Connection test passed.', 'j1ds wrote jupiterone/.connection-test to ' + f.bucketName + '. You can save now.');
    } else if (r.status === 200) {
      passed = null;
      const p = r.data.error;
      setResult($('test-result'), false, p.actionBy === 'operator'
        ? 'Connection test failed on the service\'s side (' + p.code + '): nothing to change in your settings.'
        : 'Connection test failed (' + p.code + ').', p.message);
    } else {
      const e = errorOf(r);
      setResult($('test-result'), false, 'Connection test not run.', e.message);
    }
    update();
  });

  $('settings-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    update();
    if ($('save').disabled) return;
    saving = true;
    update();
    const f = form();
    const r = await api('PUT', base(), f);
    saving = false;
    if (r.status === 200) {
      applyView(r.data, false);
      $('test-result').textContent = ''; // its "you can save now" is done
      const named = f.objectSuffix === undefined ? '' : ' Objects from the next one on are named *' + r.data.objectSuffix + '.';
      setResult($('save-result'), true, 'Saved.', (f.enabled ? 'Streaming is on: changes from now on are written to ' + f.bucketName + ' every few minutes.' : 'Streaming is off: nothing more is written. Objects already in your bucket stay.') + named);
    } else {
      const e = errorOf(r);
      setResult($('save-result'), false, 'Not saved.', e.message);
      update();
    }
  });

  $('copy').addEventListener('click', async () => {
    const text = $('policy').textContent;
    try {
      await navigator.clipboard.writeText(text);
      $('copy-result').textContent = 'Copied.';
    } catch (e) {
      const range = document.createRange();
      range.selectNodeContents($('policy'));
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      $('copy-result').textContent = document.execCommand('copy') ? 'Copied.' : 'Selected: press Ctrl+C (Cmd+C) to copy.';
    }
  });

  if (account && key) load();
  else show('signin');
})();
