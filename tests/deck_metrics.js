// Measures every slide of a reveal.js deck at its canvas size (run by tests/test_editions.py).
// Returns one record per slide: the smallest font of code, printed output and body text, code
// lines (and those that wrap), printed lines that wrap, overflow, the text a person sees, the figures'
// shown scale and the size their smallest text is shown at.
(forbidden) => {
  const W = Reveal.getConfig().width, H = Reveal.getConfig().height, out = [];
  const pattern = new RegExp(forbidden, 'm');
  const slides = Reveal.getSlides();
  let previousTitle = null;
  for (const [i, s] of slides.entries()) {
    Reveal.slide(i, 0, 1e6);
    const min = {code: Infinity, output: Infinity, body: Infinity};
    const walker = document.createTreeWalker(s, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (!n.textContent.trim()) continue;
      const el = n.parentElement;
      if (el.closest('aside.notes, mjx-container, h1, h2')) continue;
      const size = parseFloat(getComputedStyle(el).fontSize);
      const kind = el.closest('pre.code') ? 'code' : el.closest('pre.output, .output') ? 'output' : 'body';
      min[kind] = Math.min(min[kind], size);
    }
    let codeLines = 0, wrapped = 0;
    for (const pre of s.querySelectorAll('pre.code')) {
      const lines = pre.innerText.replace(/\n$/, '').split('\n').length;
      const lh = parseFloat(getComputedStyle(pre).lineHeight);
      const pad = parseFloat(getComputedStyle(pre).paddingTop) + parseFloat(getComputedStyle(pre).paddingBottom);
      codeLines = Math.max(codeLines, lines);
      wrapped += Math.max(0, Math.round((pre.clientHeight - pad) / lh) - lines);
    }
    let outputWrapped = 0;   // printed lines that wrap on the slide
    for (const pre of s.querySelectorAll('pre.output')) {
      const lines = pre.innerText.replace(/\n$/, '').split('\n').length;
      const lh = parseFloat(getComputedStyle(pre).lineHeight);
      const pad = parseFloat(getComputedStyle(pre).paddingTop) + parseFloat(getComputedStyle(pre).paddingBottom);
      outputWrapped += Math.max(0, Math.round((pre.clientHeight - pad) / lh) - lines);
    }
    const frame = s.querySelector('.frame') || s;
    const hidden = [...s.querySelectorAll('*')].filter(e => {
      const o = getComputedStyle(e).overflowX;
      return o !== 'visible' && e.scrollWidth > e.clientWidth + 1;
    }).length;
    const body = s.querySelector('.slide-body');
    const overflow = s.scrollHeight > H + 1 || s.scrollWidth > W + 1 || hidden > 0 ||
      (body && [...body.children].some(c => c.getBoundingClientRect().bottom > body.getBoundingClientRect().bottom + 1)) ||
      frame.scrollHeight > frame.clientHeight + 1;
    const figures = [...s.querySelectorAll('.figure img')].map(img => {
      const box = img.getBoundingClientRect();
      const scale = Math.min(box.width / img.naturalWidth, box.height / img.naturalHeight);
      // A figure drawn for the slide records its smallest text (pixels of the PNG): as shown, it is that times the scale.
      const textPx = img.dataset.textPx ? parseFloat(img.dataset.textPx) : null;
      return {natural: [img.naturalWidth, img.naturalHeight],
              shown: [Math.round(img.naturalWidth * scale), Math.round(img.naturalHeight * scale)],
              scale: Math.round(scale * 100) / 100,
              textPx: textPx === null ? null : Math.round(textPx * scale * 10) / 10};
    });
    const visible = [...s.childNodes].filter(c => !(c.matches && c.matches('aside.notes')))
      .map(c => c.innerText || c.textContent || '').join('\n');
    const onPurpose = [...s.querySelectorAll('.on-purpose')].map(e => e.innerText).join('\n');
    let seen = visible;
    for (const part of onPurpose.split('\n')) if (part) seen = seen.replace(part, '');
    const match = seen.match(pattern);
    const title = (s.querySelector('h1, h2') || {innerText: ''}).innerText.trim();
    out.push({index: i, title, min, codeLines, wrapped, outputWrapped, overflow, figures,
              continued: /\(continued\)/i.test(visible) || title === previousTitle,
              forbidden: match ? match[0] : null, notes: (s.querySelector('aside.notes') || {innerText: ''}).textContent});
    previousTitle = title;
  }
  return {slides: out, vertical: document.querySelectorAll('.slides > section > section').length,
          navigation: Reveal.getConfig().navigationMode};
}
