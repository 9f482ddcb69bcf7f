"""fetch_grasp.py: gymnasium-robotics' Fetch gripper with a difftac gel and tactile
sensors on each finger grasps a 4 cm box, lifts it 40 mm and writes the pads' tactile images
(out/fetch_{left,right}_{rgb,pressure}.png, out/fetch_tactile.png). Built at run time from the
wheel's own MJCF (difftac.robots.fetch_scene); see examples/robot_grasp.py for the settings
(coupling=explicit, slow approach, moderate grip gain) and the options.

    .venv/bin/python examples/fetch_grasp.py [--resolution 0.002] [--gel key=value] [--out out]
"""
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import robot_grasp  # noqa: E402

if __name__ == "__main__":
    sys.exit(robot_grasp.main(robot="fetch"))
