/* WavePick headset audio: microphone capture to PCM s16le mono at the session rate (and,
 * for WebRTC, as a gated track to send), and gapless playback of the prompt audio the
 * server streams back over the socket.
 *
 * Exposes window.WavePickAudio = {MicCapture, PromptPlayer, PcmResampler}. No dependencies.
 */
"use strict";

(function () {
  /* Low-pass (two cascaded biquads, 4th-order Butterworth below the output Nyquist) and
   * fractional decimation to the target rate. Emits ~40 ms chunks of int16 samples with
   * their RMS level in dBFS. Runs both inside the AudioWorklet (its source is sent there
   * with Function.prototype.toString) and on the main thread for the ScriptProcessor
   * fallback, so it must stay self-contained. */
  class PcmResampler {
    constructor(inRate, outRate, chunkMs, onChunk) {
      this.inRate = inRate;
      this.onChunk = onChunk;
      this.chunkMs = chunkMs;
      this.configure(outRate);
    }

    configure(outRate) {
      this.outRate = outRate;
      this.step = this.inRate / outRate;
      this.phase = 0;
      this.prev = 0;
      this.chunkSamples = Math.round((outRate * this.chunkMs) / 1000);
      this.chunk = new Int16Array(this.chunkSamples);
      this.fill = 0;
      this.sumSquares = 0;
      this.filters = this.step > 1
        ? [PcmResampler.lowpass(this.inRate, outRate * 0.45, 0.5412),
           PcmResampler.lowpass(this.inRate, outRate * 0.45, 1.3066)]
        : [];
    }

    static lowpass(rate, cutoff, q) {
      const w = (2 * Math.PI * cutoff) / rate;
      const alpha = Math.sin(w) / (2 * q);
      const cos = Math.cos(w);
      const a0 = 1 + alpha;
      return {
        b0: (1 - cos) / 2 / a0, b1: (1 - cos) / a0, b2: (1 - cos) / 2 / a0,
        a1: (-2 * cos) / a0, a2: (1 - alpha) / a0,
        x1: 0, x2: 0, y1: 0, y2: 0,
      };
    }

    /* channels: Float32Array per input channel (mixed down to mono). */
    push(channels) {
      const first = channels[0];
      const count = channels.length;
      for (let i = 0; i < first.length; i++) {
        let x = first[i];
        if (count > 1) {
          for (let c = 1; c < count; c++) x += channels[c][i];
          x /= count;
        }
        for (const f of this.filters) {
          const y = f.b0 * x + f.b1 * f.x1 + f.b2 * f.x2 - f.a1 * f.y1 - f.a2 * f.y2;
          f.x2 = f.x1; f.x1 = x; f.y2 = f.y1; f.y1 = y;
          x = y;
        }
        // Output samples fall at input positions k*step; interpolate between prev and x.
        while (this.phase < 1) {
          this.emit(this.prev + (x - this.prev) * this.phase);
          this.phase += this.step;
        }
        this.phase -= 1;
        this.prev = x;
      }
    }

    emit(sample) {
      const s = sample > 1 ? 1 : sample < -1 ? -1 : sample;
      this.sumSquares += s * s;
      this.chunk[this.fill++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.fill === this.chunkSamples) {
        const rms = Math.sqrt(this.sumSquares / this.fill);
        const db = rms > 0 ? 20 * Math.log10(rms) : -120;
        this.onChunk(this.chunk.buffer, db); // the worklet transfers (detaches) this buffer
        this.chunk = new Int16Array(this.chunkSamples);
        this.fill = 0;
        this.sumSquares = 0;
      }
    }
  }

  const WORKLET_SOURCE = `${PcmResampler.toString()}
class WavePickCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions;
    this.resampler = new PcmResampler(sampleRate, o.outRate, o.chunkMs, (buffer, db) => {
      this.port.postMessage({buffer, db}, [buffer]);
    });
    this.port.onmessage = (event) => {
      if (event.data && event.data.outRate) this.resampler.configure(event.data.outRate);
    };
  }
  process(inputs) {
    const input = inputs[0];
    if (input && input.length && input[0].length) this.resampler.push(input);
    return true;
  }
}
registerProcessor("wavepick-capture", WavePickCapture);
`;

  /* What the server's recognition wants from the browser's audio processing: echo
   * cancellation, so prompts played on the same device are not heard back (nor taken for
   * barge-in); no noise suppression, whose artefacts on quiet digits cost more than the
   * steady noise it removes (the server tracks the noise floor and was tuned on noisy
   * speech); no automatic gain, which pumps the floor between words, when the server
   * brings every utterance to one level itself. */
  const MIC_CONSTRAINTS = {
    echoCancellation: true, noiseSuppression: false, autoGainControl: false, channelCount: 1,
  };

  /* The microphone: getUserMedia → AudioWorklet (or ScriptProcessor) → onChunk(ArrayBuffer
   * of int16 LE samples at outRate, level in dBFS). The chunks flow as long as the mic is
   * started; the caller decides which ones to send (push-to-talk, hands-free). For WebRTC,
   * sendTrack() is the same microphone delayed and gated: openSend()/closeSend() decide
   * what goes out, and the delay lets push-to-talk send the moment before the press. */
  class MicCapture {
    constructor(context, {outRate = 16000, chunkMs = 40, onChunk}) {
      this.context = context;
      this.outRate = outRate;
      this.chunkMs = chunkMs;
      this.onChunk = onChunk;
      this.stream = null;
      this.nodes = [];
      this.worklet = null;
      this.resampler = null;
      this.kind = null;
      this.source = null;
      this.send = null; // {delay, gate, out}: the WebRTC send graph, once asked for
    }

    static supported() {
      return !!(window.isSecureContext && navigator.mediaDevices
        && navigator.mediaDevices.getUserMedia);
    }

    get running() {
      return this.stream !== null;
    }

    async start() {
      if (this.stream) return;
      const stream = await navigator.mediaDevices.getUserMedia({audio: MIC_CONSTRAINTS});
      this.stream = stream;
      const ctx = this.context;
      const source = ctx.createMediaStreamSource(stream);
      this.source = source;
      const sink = ctx.createGain();
      sink.gain.value = 0; // keeps the graph pulled without echoing the mic to the speaker
      sink.connect(ctx.destination);
      let processor;
      if (ctx.audioWorklet && window.AudioWorkletNode) {
        if (!MicCapture.loaded.has(ctx)) {
          const url = URL.createObjectURL(new Blob([WORKLET_SOURCE],
                                                   {type: "application/javascript"}));
          try {
            await ctx.audioWorklet.addModule(url);
          } finally {
            URL.revokeObjectURL(url);
          }
          MicCapture.loaded.add(ctx);
        }
        processor = new AudioWorkletNode(ctx, "wavepick-capture", {
          numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
          processorOptions: {outRate: this.outRate, chunkMs: this.chunkMs},
        });
        processor.port.onmessage = (event) => this.onChunk(event.data.buffer, event.data.db);
        this.worklet = processor;
        this.kind = "audioworklet";
      } else {
        processor = ctx.createScriptProcessor(2048, 1, 1);
        this.resampler = new PcmResampler(ctx.sampleRate, this.outRate, this.chunkMs,
                                          (buffer, db) => this.onChunk(buffer, db));
        processor.onaudioprocess = (event) => {
          const input = event.inputBuffer;
          const channels = [];
          for (let c = 0; c < input.numberOfChannels; c++) channels.push(input.getChannelData(c));
          this.resampler.push(channels);
        };
        this.kind = "scriptprocessor";
      }
      source.connect(processor);
      processor.connect(sink);
      this.nodes = [source, processor, sink];
    }

    /* The microphone as a track for a peer connection, silent until openSend(). */
    sendTrack() {
      if (!this.source) return null;
      if (!this.send) {
        const ctx = this.context;
        const delay = ctx.createDelay(1);
        const gate = ctx.createGain();
        gate.gain.value = 0;
        const out = ctx.createMediaStreamDestination();
        this.source.connect(delay);
        delay.connect(gate);
        gate.connect(out);
        this.send = {delay, gate, out};
      }
      return this.send.out.stream.getAudioTracks()[0];
    }

    /* Delay what the track sends by `ms` (push-to-talk's pre-roll; 0 hands-free). */
    setSendDelay(ms) {
      if (this.send) this.send.delay.delayTime.value = ms / 1000;
    }

    openSend() {
      if (!this.send) return;
      const gain = this.send.gate.gain;
      gain.cancelScheduledValues(this.context.currentTime);
      gain.setValueAtTime(1, this.context.currentTime);
    }

    /* Close the track after `ms` more (and the delay): push-to-talk's hang-over. */
    closeSend(ms = 0) {
      if (!this.send) return;
      const gain = this.send.gate.gain;
      const at = this.context.currentTime + ms / 1000 + this.send.delay.delayTime.value;
      gain.cancelScheduledValues(this.context.currentTime);
      gain.setValueAtTime(gain.value, this.context.currentTime);
      gain.setValueAtTime(0, at);
    }

    setOutRate(rate) {
      this.outRate = rate;
      if (this.worklet) this.worklet.port.postMessage({outRate: rate});
      if (this.resampler) this.resampler.configure(rate);
    }

    stop() {
      for (const node of this.nodes) node.disconnect();
      this.nodes = [];
      if (this.send) {
        for (const node of [this.send.delay, this.send.gate]) node.disconnect();
        for (const track of this.send.out.stream.getTracks()) track.stop();
      }
      this.send = null;
      this.source = null;
      if (this.worklet) this.worklet.port.onmessage = null;
      this.worklet = null;
      this.resampler = null;
      if (this.stream) for (const track of this.stream.getTracks()) track.stop();
      this.stream = null;
    }
  }
  MicCapture.loaded = new WeakSet();

  /* Prompt audio: PCM s16le frames scheduled back to back on one AudioContext, so chunks
   * of any size play without gaps. stop() silences everything queued (barge-in). */
  class PromptPlayer {
    constructor(context) {
      this.context = context;
      this.output = context.createGain();
      this.output.connect(context.destination);
      this.sources = new Set();
      this.nextTime = 0;
      this.carry = null; // an odd trailing byte from the previous frame
      this.stats = {frames: 0, bytes: 0, seconds: 0};
    }

    get playing() {
      return this.sources.size > 0;
    }

    enqueue(data, sampleRate) {
      let bytes = new Uint8Array(data);
      this.stats.frames += 1;
      this.stats.bytes += bytes.length;
      if (this.carry !== null) {
        const joined = new Uint8Array(bytes.length + 1);
        joined[0] = this.carry;
        joined.set(bytes, 1);
        bytes = joined;
        this.carry = null;
      }
      if (bytes.length % 2) {
        this.carry = bytes[bytes.length - 1];
        bytes = bytes.subarray(0, bytes.length - 1);
      }
      const count = bytes.length / 2;
      if (!count) return;
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
      const buffer = this.context.createBuffer(1, count, sampleRate);
      const samples = buffer.getChannelData(0);
      for (let i = 0; i < count; i++) samples[i] = view.getInt16(2 * i, true) / 0x8000;
      const source = this.context.createBufferSource();
      source.buffer = buffer;
      source.connect(this.output);
      // A small lead on the first chunk absorbs network jitter; later chunks follow exactly.
      const now = this.context.currentTime;
      const start = this.nextTime > now ? this.nextTime : now + 0.06;
      source.start(start);
      this.nextTime = start + buffer.duration;
      this.stats.seconds += buffer.duration;
      this.sources.add(source);
      source.onended = () => {
        this.sources.delete(source);
        if (!this.sources.size && this.onidle) this.onidle();
      };
    }

    stop() {
      for (const source of this.sources) {
        source.onended = null;
        try {
          source.stop();
        } catch (err) {
          console.warn("wavepick: stopping a prompt buffer failed", err);
        }
      }
      this.sources.clear();
      this.nextTime = 0;
      this.carry = null;
      if (this.onidle) this.onidle();
    }
  }

  window.WavePickAudio = {MicCapture, PromptPlayer, PcmResampler};
})();
