# On the shared 2-core CPU box, one torch thread per process, two sweeps side by side.
# 10k first; the 20k runs continue the 10k runs from their checkpoints (runs/sine-seeds).
OMP_NUM_THREADS=1 nice -n 5 python benchmarks/sine_seeds.py --methods adam,adam-clip-dp --seeds 0-19 --iterations 10000
OMP_NUM_THREADS=1 nice -n 5 python benchmarks/sine_seeds.py --methods pg-analytic --seeds 0-19 --iterations 10000
OMP_NUM_THREADS=1 nice -n 5 python benchmarks/sine_seeds.py --methods adam-lr-decay,pg-analytic-lr-decay --seeds 0-4 --iterations 10000
OMP_NUM_THREADS=1 nice -n 5 python benchmarks/sine_seeds.py --methods pg-analytic --seeds 0-19 --iterations 20000
OMP_NUM_THREADS=1 nice -n 5 python benchmarks/sine_seeds.py --methods adam --seeds 0-19 --iterations 20000
python -m physgrad.report.sine_seeds docs/results/sine-seeds
